"""The server-rendered pages (status, events, alarms, persons) and the login/logout/language forms.

Forms post urlencoded bodies parsed here (no multipart dependency); login and logout carry a CSRF token
(login: double-submit cookie, logout: the session's token); the pages' buttons use the JSON API.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from edge.records import AlarmRecord
from edge.time_input import TimeInputError, optional_time
from edge.web.api import health_payload
from edge.web.app import WebState, require_session, web_state
from edge.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, same_token, verify_password
from edge.web.client_address import ClientAddress
from edge.web.i18n import LANG_COOKIE, LANGUAGES
from edge.web.login_guard import posted_by_this_page
from edge.web.views import alarm_view, event_view

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 4096

State = Annotated[WebState, Depends(web_state)]
Guard = Annotated[Session, Depends(require_session)]


def render(st: WebState, request: Request, name: str, session: Session | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    t = st.translator(request)
    base = {"t": t, "lang": t.lang, "session": session, "csrf": session.csrf if session else "",
            "gate_id": st.parts.gate_id, "active": name.removesuffix(".html"),
            "unacked": len(st.store.alarms(unacknowledged=True, limit=1000)) if session else 0,
            "may_ack": session is not None and (session.role == "operator" or st.cfg.viewers_may_acknowledge)}
    return st.templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


async def read_form(request: Request) -> dict[str, str] | None:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items()}


def set_cookie(st: WebState, response: Response, name: str, value: str, max_age: int | None,
               path: str = "/", httponly: bool = True) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=httponly, samesite="strict",
                        secure=st.cfg.secure_cookies)


def login_cookie(st: WebState) -> str:
    """`__Host-` where the page is served over TLS: only this host's secure origin can set it."""
    return f"__Host-{LOGIN_CSRF_COOKIE}" if st.cfg.secure_cookies else LOGIN_CSRF_COOKIE


def _login_page(st: WebState, request: Request, error: str | None = None, status_code: int = 200,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    token = st.login_tokens.issue()
    response = render(st, request, "login.html", None, status_code, login_csrf=token, error=error)
    set_cookie(st, response, login_cookie(st), token, 3600, path="/")
    response.headers.update(headers or {})
    return response


@router.get("/login")
def login_form(request: Request, st: State) -> Response:
    if st.session(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_page(st, request)


@router.post("/login")
async def login(request: Request, st: State) -> Response:
    """CSRF: the post must come from this page's origin (not another port of this host), carry the
    token of its cookie, and that token must be one this server issued and nobody has used yet."""
    t = st.translator(request)
    form = await read_form(request)
    client = st.client(request)
    if (form is None or not posted_by_this_page(request.headers, request.headers.get("host"), st.cfg.public_origin)
            or not same_token(form.get("csrf"), request.cookies.get(login_cookie(st)))
            or not st.login_tokens.redeem(form.get("csrf"))):
        log.warning("login form refused (CSRF check) from %s", client.effective)
        return _login_page(st, request, t("csrf.failed"), 403)
    name = form.get("name", "").strip()[:64]
    password = form.get("password", "")
    verdict = st.limiter.check(client.effective, name)
    if verdict.wait_s:
        log.warning("login rate limit (%s): %s from %s, retry in %s s", verdict.why, name, client.effective,
                    verdict.wait_s)
        return _login_page(st, request, t("login.too_many", seconds=verdict.wait_s), 429,
                           {"Retry-After": str(verdict.wait_s)})
    try:
        guard = await asyncio.to_thread(st.guard, name) if name else None
        ok = await asyncio.to_thread(verify_password, guard.password_hash if guard else None, password)
    except BaseException:
        st.limiter.abandoned(client.effective, name)  # the store failed: no verdict, the reservation goes
        raise
    if not ok or guard is None or guard.disabled:
        st.writes.audit(name or "-", "login_failed", client.audit())
        if st.limiter.failed(client.effective, name):
            _lockout_alarm(st, name, client)
        return _login_page(st, request, t("login.failed"), 401)
    st.limiter.succeeded(client.effective, name)
    session = st.sessions.create(guard.name, guard.role)
    st.writes.audit(guard.name, "login", {**client.audit(), "role": guard.role})
    log.info("guard %s (%s) logged in from %s", guard.name, guard.role, client.effective)
    response = RedirectResponse("/", status_code=303)
    set_cookie(st, response, SESSION_COOKIE, session.token, max(1, int(st.sessions.lifetime_s)))
    response.delete_cookie(login_cookie(st), path="/")
    return response


def _lockout_alarm(st: WebState, name: str, client: ClientAddress) -> None:
    """One alarm when a name is locked out (the limiter says when: once a minute at most per name)."""
    message = f"login locked out for {name or '-'}: repeated wrong passwords (last from {client.effective})"
    log.warning("%s", message)
    st.gate.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="login_lockout", severity="warning", message=message,
                                     gate_id=st.parts.gate_id, details={"guard": name, **client.audit()}))


@router.post("/logout")
async def logout(request: Request, st: State, s: Guard) -> Response:
    form = await read_form(request)
    if form is None or not same_token(form.get("csrf"), s.csrf):
        return render(st, request, "error.html", s, 403, message=st.translator(request)("csrf.failed"))
    st.sessions.drop(s.token)
    st.writes.audit(s.guard, "logout", {})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{lang}")
def set_language(lang: str, st: State, back: str = "/") -> Response:
    """The guard's language choice (a cookie); `back` must be a path on this site."""
    target = back if back.startswith("/") and not back.startswith("//") and "\\" not in back else "/"
    response = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        set_cookie(st, response, LANG_COOKIE, lang, 365 * 24 * 3600, httponly=False)
    return response


@router.get("/", response_class=HTMLResponse)
def status_page(request: Request, st: State, s: Guard) -> Response:
    t = st.translator(request)
    recent = st.store.events(limit=10, newest_first=True)
    views = [event_view(e.to_dict(), _name(st, e.person_id), t, st.tz) for e in recent]
    unacked = [alarm_view(_alarm_dict(a), t, st.tz) for a in st.store.alarms(unacknowledged=True, limit=20)]
    return render(st, request, "status.html", s, last=views[0] if views else None, recent=views,
                  health=health_payload(st, request), alarms=unacked)


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, st: State, s: Guard, since: str = "", until: str = "",
                person: Annotated[str, Query(max_length=64)] = "", decision: str = "",
                page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    t = st.translator(request)
    size = st.cfg.max_events_page
    query = {"since": since, "until": until, "person": person, "decision": decision}
    try:
        start, end = optional_time(since, "since", st.tz), optional_time(until, "until", st.tz)
    except TimeInputError as exc:
        field = "since" if str(exc).startswith("since") else "until"
        return render(st, request, "events.html", s, 422, rows=[], q=query, page=1, more=False,
                      error=t("events.bad_time", field=t(f"events.{field}")))
    found = st.store.events(since=start, until=end, person_id=person.strip() or None,
                            decision="grant" if decision == "grant" else "deny" if decision == "deny" else None,
                            limit=size + 1, offset=(page - 1) * size, newest_first=True)
    rows = [event_view(e.to_dict(), _name(st, e.person_id), t, st.tz) for e in found[:size]]
    return render(st, request, "events.html", s, rows=rows, q=query, page=page, more=len(found) > size, error=None)


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, st: State, s: Guard, event_id: str) -> Response:
    t = st.translator(request)
    ev = st.store.get_event(event_id[:64])
    if ev is None:
        return render(st, request, "error.html", s, 404, message=t("event.not_found"))
    crop = st.store.snapshots and st.store.get_snapshot(ev.event_id) is not None
    return render(st, request, "event.html", s, ev=event_view(ev.to_dict(), _name(st, ev.person_id), t, st.tz),
                  raw=ev, crop=crop, snapshots_on=st.store.snapshots)


@router.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request, st: State, s: Guard, unacked: bool = False,
                page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    t = st.translator(request)
    size = st.cfg.max_events_page
    found = st.store.alarms(unacknowledged=unacked, limit=size + 1, offset=(page - 1) * size)
    rows = [alarm_view(_alarm_dict(a), t, st.tz) for a in found[:size]]
    return render(st, request, "alarms.html", s, rows=rows, only_unacked=unacked, page=page, more=len(found) > size)


@router.get("/persons", response_class=HTMLResponse)
def persons_page(request: Request, st: State, s: Guard, q: Annotated[str, Query(max_length=100)] = "",
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    size = st.cfg.max_events_page
    found = st.store.list_persons(q.strip() or None, limit=size + 1, offset=(page - 1) * size)
    rows = [{"id": p.id, "name": p.name, "kind": p.kind, "status": p.status, "unit": p.unit or "",
             "valid": _valid_text(p.valid_from, p.valid_until, st),
             "uses": f"{p.uses}/{p.max_uses}" if p.max_uses is not None else str(p.uses)} for p in found[:size]]
    return render(st, request, "persons.html", s, rows=rows, q=q, page=page, more=len(found) > size)


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request, st: State) -> Response:
    """The JSON API, read from the app's own OpenAPI document and rendered here (no script, nothing from
    another site: the page's CSP allows neither); /openapi.json is the machine-readable form."""
    schema = request.app.openapi()
    operations = []
    for path, methods in sorted(schema.get("paths", {}).items()):
        for method, op in methods.items():
            params = [{"name": p.get("name", ""), "where": p.get("in", ""), "required": bool(p.get("required")),
                       "type": _type_text(p.get("schema", {}))} for p in op.get("parameters", [])]
            responses = [{"code": code, "text": r.get("description", "")}
                         for code, r in op.get("responses", {}).items()]
            operations.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                               "params": params, "responses": responses,
                               "body": "requestBody" in op, "login": path.startswith("/api/")})
    return render(st, request, "docs.html", st.session(request), operations=operations,
                  version=schema.get("info", {}).get("version", ""))


def _type_text(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    return str(schema.get("format") or schema.get("type") or "")


def _name(st: WebState, person_id: str | None) -> str | None:
    if person_id is None:
        return None
    cached = st.parts.cached_name(person_id)
    if cached is not None:
        return cached
    p = st.store.get_person(person_id)
    return p.name if p else None


def _alarm_dict(a: Any) -> dict[str, Any]:
    return {**a.to_dict(), "acknowledged_by": a.acknowledged_by, "acknowledged_at": a.acknowledged_at}


def _valid_text(start: datetime | None, end: datetime | None, st: WebState) -> str:
    fmt = "%Y-%m-%d"
    a = start.astimezone(st.tz).strftime(fmt) if start else ""
    b = end.astimezone(st.tz).strftime(fmt) if end else ""
    return f"{a} – {b}" if a or b else "∞"

