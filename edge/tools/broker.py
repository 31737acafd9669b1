"""Outbox drain benchmark against a real local Mosquitto, and the small broker runner it (and the
sync tests) use: `Mosquitto(workdir)` starts `mosquitto` on a free loopback port.

`bench_drain(n)` fills a fresh SQLite store with n events, then times MqttSync draining them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.config.mqtt import MqttConfig
from edge.store import EventRecord, Store
from edge.sync.mqtt import MqttSync

log = logging.getLogger(__name__)
MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A mosquitto process on 127.0.0.1 (anonymous, no persistence unless asked); can be stopped and
    started again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None, *, persistence: bool = False,
                 users: dict[str, str] | None = None, extra_config: Sequence[str] = (),
                 binary: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.persistence = persistence
        self.users = users  # None: anonymous access; else only these user names and passwords
        self.extra_config = list(extra_config)  # more mosquitto.conf lines, e.g. an acl_file
        self.binary = binary or shutil.which("mosquitto") or MOSQUITTO
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {'true' if self.users is None else 'false'}",
                 f"persistence {'true' if self.persistence else 'false'}",
                 "max_queued_messages 0", "max_inflight_messages 0", "log_dest stderr",
                 "log_type error", "log_type warning"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot read a private workdir
        if self.persistence:
            lines += [f"persistence_location {self.workdir}/", "autosave_interval 0"]
        if self.users is not None:
            pw = self.workdir / "passwords"
            pw.write_text("", encoding="utf-8")
            for user, password in self.users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pw),
                                user, password], check=True, capture_output=True)
            lines.append(f"password_file {pw}")
        lines += self.extra_config
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("mosquitto is running already")
        conf = self._write_config()
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its ACL and password files."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("mosquitto is not running")
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM: a persistent broker saves its sessions and queues)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fill_outbox(store: Store, n: int, gate_id: str = "bench-gate", batch: int = 5_000) -> list[str]:
    """Record n deny events (each with its outbox row) in transactions of `batch`; their event ids."""
    ids: list[str] = []
    for start in range(0, n, batch):
        events = [EventRecord(ts=datetime.now(UTC), gate_id=gate_id, direction="in", decision="deny",
                              reasons=({"code": "unknown_face", "seq": start + i},))
                  for i in range(min(batch, n - start))]

        def write(s: Store, evs: list[EventRecord] = events) -> None:
            for ev in evs:
                s.record_event(ev)

        store.apply_in_transaction(write)
        ids.extend(ev.event_id for ev in events)
    return ids


def drain(db: Path, url: str, *, gate_id: str = "bench-gate", community: str = "bench",
          max_inflight: int = 20, timeout: float = 600.0, linger: bool = False) -> float:
    """Open the store at `db` and drain its outbox to the broker; seconds taken from connect to empty.
    With `linger` it keeps running after that (until killed): the gate-process stand-in of the tests."""
    store = Store.open(db)
    cfg = MqttConfig(enabled=True, url=url, max_inflight=max_inflight, reconnect_min_s=0.2, reconnect_max_s=1.0,
                     keepalive_s=10)
    sync = MqttSync(cfg, store, gate_id=gate_id, community=community)
    sync.start()
    try:
        if not sync.wait_connected(30):
            raise RuntimeError(f"no connection to {url}")
        t0 = time.monotonic()
        deadline = t0 + timeout
        while store.outbox_depth() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox not drained within {timeout} s")
            time.sleep(0.01)
        took = time.monotonic() - t0
        while linger:
            time.sleep(1)
        return took
    finally:
        sync.stop()
        store.close()


@dataclass(frozen=True)
class BenchResult:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def bench_drain(n: int = 100_000, *, max_inflight: int = 20, workdir: Path | None = None) -> BenchResult:
    """Drain a backlog of n events from a real SQLite store to a local Mosquitto; events/s in the result."""
    with tempfile.TemporaryDirectory(prefix="edge-gate-bench-") as tmp:
        base = Path(workdir or tmp)
        db = base / "bench.sqlite"
        with Store.open(db) as store:
            t0 = time.monotonic()
            fill_outbox(store, n)
            log.info("filled the outbox with %s events in %.1f s", n, time.monotonic() - t0)
        with Mosquitto(base / "broker") as broker:
            seconds = drain(db, broker.url, max_inflight=max_inflight)
    result = BenchResult(n, seconds)
    log.info("drained %s events in %.2f s: %.0f events/s", n, seconds, result.rate)
    return result
