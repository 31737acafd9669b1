"""`WebServer(parts, cfg)`: the guards' page served by uvicorn on a thread inside the gate process.

`start()` returns once the socket listens (or logs, raises a `web_fault` alarm and returns False when it
cannot: the gate keeps working without its page); `stop()` ends the live streams, asks uvicorn to exit
and joins the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import uvicorn

from edge.config.web import WebConfig
from edge.records import AlarmRecord
from edge.web.app import WebState, create_app
from edge.web.ports import WebParts

log = logging.getLogger(__name__)


class WebServer:
    def __init__(self, parts: WebParts, cfg: WebConfig | None = None) -> None:
        self.parts = parts
        self.cfg = cfg if cfg is not None else parts.web
        self.app = create_app(parts, self.cfg)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=self.cfg.host, port=self.cfg.port, log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=2, server_header=False,
            proxy_headers=False))  # forwarded headers: only from [web] trusted_proxies (edge.web.client_address)
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> WebState:
        state: WebState = self.app.state.web
        return state

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.cfg.port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.cfg.host in ("0.0.0.0", "::") else self.cfg.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> bool:
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                log.info("guards' page on %s", self.url)
                return True
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        message = f"the guards' page could not listen on {self.cfg.host}:{self.cfg.port}"
        log.error("%s", message)
        self.parts.gate.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="web_fault", severity="high",
                                                 message=message, gate_id=self.parts.gate_id))
        self.stop()
        return False

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind; that must not end the gate
            log.error("the guards' page server exited (code %s)", exc.code)
        except Exception:
            log.exception("the guards' page server failed")

    def stop(self, timeout: float = 5.0) -> None:
        self.state.live.stop_threadsafe()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the web server did not stop within %s s", timeout)
            self._thread = None
