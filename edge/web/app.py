"""`create_app(parts)`: the guards' FastAPI app (pages, JSON API, live stream, health and metrics).

The app sees its gate only through `WebParts` (`edge.web.ports`, built by `Gate.web_parts()`). State
shared by the routes lives in `WebState` on `app.state.web`; the routes are in `pages.py`
(server-rendered HTML, not in the OpenAPI schema) and `api.py` (JSON, documented in /openapi.json).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from edge.config.web import WebConfig
from edge.records import GuardRecord
from edge.web.auth import SESSION_COOKIE, Session, Sessions
from edge.web.client_address import AddressResolver, ClientAddress
from edge.web.i18n import LANG_COOKIE, Translator, pick_language
from edge.web.live import Live
from edge.web.login_guard import LoginLimiter, LoginTokens
from edge.web.metrics import GateMetrics
from edge.web.ports import GateActions, GuardWrites, StoreView, WebParts

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


@dataclass
class WebState:
    parts: WebParts
    cfg: WebConfig
    sessions: Sessions
    limiter: LoginLimiter
    metrics: GateMetrics
    live: Live
    templates: Jinja2Templates
    tz: tzinfo
    addresses: AddressResolver
    login_tokens: LoginTokens

    @property
    def store(self) -> StoreView:
        return self.parts.store

    @property
    def writes(self) -> GuardWrites:
        return self.parts.writes

    @property
    def gate(self) -> GateActions:
        return self.parts.gate

    def lang(self, request: Request) -> str:
        return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"),
                             self.cfg.language)

    def translator(self, request: Request) -> Translator:
        return Translator(self.lang(request))

    def session(self, request: Request) -> Session | None:
        """The request's session, if it is valid and its guard still exists and is not disabled."""
        return self.live_session(request.cookies.get(SESSION_COOKIE))

    def live_session(self, token: str | None) -> Session | None:
        """The session of this token if it has not expired and its guard still exists and is not disabled
        (the store is asked each time: `gate guard disable` ends the guard's sessions at their next use);
        its role is the guard's current one. Reads the store: call it off the event loop."""
        s = self.sessions.get(token)
        if s is None:
            return None
        try:
            guard = self.guard(s.guard)
        except Exception as exc:  # the guards table cannot be read: no access can be confirmed (fail closed)
            log.error("guard %s not confirmed, request refused: %s", s.guard, exc)
            return None
        if guard is None or guard.disabled:
            self.sessions.drop_guard(s.guard)
            return None
        s.role = guard.role
        return s

    def guard(self, name: str) -> GuardRecord | None:
        return self.store.get_guard(name)

    def sync_health(self) -> tuple[bool, bool | None]:
        """(MQTT configured, connected or None when unknown)."""
        connected = self.parts.mqtt_connected
        if connected is None:
            return False, None
        state = connected()
        return True, bool(state) if state is not None else None

    def client(self, request: Request) -> ClientAddress:
        """The TCP peer and, from a trusted proxy only, the address it forwarded for."""
        return self.addresses.resolve(request.client.host if request.client else None, request.headers)

    def check_sessions(self) -> None:
        """Every logged-in guard re-read from the store (a thread, twice a second): the streams of a
        guard who logged out, was disabled or changed role end at the next check."""
        try:
            self.sessions.check_all(self.guard)
        except Exception as exc:  # the store cannot be read: streams end once the last check is too old
            log.error("guards' sessions not re-checked: %s", exc)


SESSION_CHECK_S = 0.5


def _check_sessions(st: WebState, stop: threading.Event) -> None:
    """Its own thread: logins (argon2) and previews on the event loop's executor cannot starve it."""
    while not stop.wait(SESSION_CHECK_S):
        st.check_sessions()


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def require_session(request: Request) -> Session:
    s = web_state(request).session(request)
    if s is None:
        raise LoginRequired()
    return s


def create_app(parts: WebParts, cfg: WebConfig | None = None) -> FastAPI:
    """The app for the gate `parts` come from; `cfg` defaults to the gate's `[web]` section."""
    from edge.web.api import router as api_router
    from edge.web.pages import router as pages_router

    web_cfg: WebConfig = cfg if cfg is not None else parts.web
    metrics = GateMetrics(parts.gate)
    live = Live(parts.gate, metrics)
    try:
        tz: tzinfo = ZoneInfo(parts.timezone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        live.start(asyncio.get_running_loop())
        stop = threading.Event()
        app.state.web.sessions.watched = True  # streams now also end when the checks stop coming
        threading.Thread(target=_check_sessions, args=(app.state.web, stop), name="session-check",
                         daemon=True).start()
        try:
            yield
        finally:
            stop.set()
            live.stop()

    app = FastAPI(title=f"edge-gate {parts.gate_id}", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="The guards' status page of one gate: JSON API (the HTML pages are not listed).")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    limiter = LoginLimiter(web_cfg.login_attempts_per_minute, free_failures=web_cfg.login_free_failures,
                           max_backoff_s=web_cfg.login_max_backoff_s,
                           global_per_minute=web_cfg.login_failures_global_per_minute)
    app.state.web = WebState(parts, web_cfg, Sessions(web_cfg.session_hours), limiter, metrics, live, templates, tz,
                             AddressResolver(web_cfg.trusted_proxies, web_cfg.proxy_header), LoginTokens())
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api_router)
    app.include_router(pages_router)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/") or request.method != "GET":
            return JSONResponse({"detail": "login required"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.url.path not in ("/healthz", "/metrics") and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
