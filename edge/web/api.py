"""The JSON API (documented in /openapi.json), the live stream (SSE), the camera preview (MJPEG),
`/healthz` and `/metrics`. Every POST needs the session's CSRF token in the `X-CSRF-Token` header."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from drivers.relay import RelayError
from edge.records import PersonRecord, ts_text
from edge.store.errors import StoreError
from edge.time_input import TimeInputError, optional_time
from edge.web.app import WebState, require_session, web_state
from edge.web.auth import Session, same_token
from edge.web.views import alarm_view, event_view, health_view, hold_view

log = logging.getLogger(__name__)
router = APIRouter()
CSRF_HEADER = "X-CSRF-Token"
HEALTH_EVERY_S = 2.0
STREAM_TICK_S = 0.25  # how often a live stream looks at its session between items
PREVIEW_FPS = 5.0

State = Annotated[WebState, Depends(web_state)]
Guard = Annotated[Session, Depends(require_session)]


def csrf_session(request: Request, session: Guard) -> Session:
    if not same_token(request.headers.get(CSRF_HEADER), session.csrf):
        raise HTTPException(403, "CSRF token missing or wrong")
    return session


CsrfGuard = Annotated[Session, Depends(csrf_session)]


class OpenRequest(BaseModel):
    reason: str = Field(..., max_length=500, description="Why the guard opens the gate (required, audited).")


class HoldRequest(BaseModel):
    reason: str = Field(..., max_length=500, description="Why the guard holds the gate open (required, audited).")
    minutes: int = Field(..., ge=1, le=1440, description="How long ([lane] hold_open_max_minutes at most).")


class OpenResult(BaseModel):
    event_id: str
    pulses: int = Field(description="Relay pulses since the gate started, this one included.")


class AckResult(BaseModel):
    id: str
    acknowledged_by: str


class PersonOut(BaseModel):
    """A whitelist entry as guards see it: no face templates, ever."""

    id: str
    name: str
    kind: str
    status: str
    unit: str | None
    valid_from: str | None
    valid_until: str | None
    uses: int
    max_uses: int | None

    @classmethod
    def of(cls, p: PersonRecord) -> PersonOut:
        return cls(id=p.id, name=p.name, kind=p.kind, status=p.status, unit=p.unit,
                   valid_from=ts_text(p.valid_from) if p.valid_from else None,
                   valid_until=ts_text(p.valid_until) if p.valid_until else None, uses=p.uses, max_uses=p.max_uses)


def bounded(value: datetime | None, what: str, st: WebState) -> datetime | None:
    """A query's time, in the gate's zone when it has no offset; out of range: 422 with the reason."""
    try:
        return optional_time(value, what, st.tz)
    except TimeInputError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/healthz", summary="Liveness for supervisors and load balancers (no login)")
def healthz(st: State) -> JSONResponse:
    alive = st.gate.alive()
    return JSONResponse({"ok": alive, "gate_id": st.parts.gate_id}, status_code=200 if alive else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(st: State) -> Response:
    return Response(st.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/status", summary="The gate's health snapshot and the MQTT state")
def status(st: State, _s: Guard) -> dict[str, Any]:
    has_sync, sync_ok = st.sync_health()
    io = st.gate.lane_io() if st.gate.lane_io is not None else None
    return {**st.gate.health(), "mqtt": {"configured": has_sync, "connected": sync_ok}, "lane_io": io}


@router.get("/api/events", summary="Recorded decisions, newest first",
            responses={422: {"description": "a time that is not ISO-8601 or outside 1970-01-01 .. 2999-12-31"}})
def events(st: State, _s: Guard, since: datetime | None = None, until: datetime | None = None,
           person_id: Annotated[str | None, Query(max_length=64)] = None,
           decision: Literal["grant", "deny"] | None = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
           ) -> list[dict[str, Any]]:
    limit = min(limit, st.cfg.max_events_page)
    found = st.store.events(since=bounded(since, "since", st), until=bounded(until, "until", st),
                            person_id=person_id or None,
                            decision=decision, limit=limit, offset=offset, newest_first=True)
    return [e.to_dict() for e in found]


@router.get("/api/events/{event_id}", summary="One decision with reasons, temperature inputs and scores")
def event(st: State, _s: Guard, event_id: str) -> dict[str, Any]:
    ev = st.store.get_event(event_id)
    if ev is None:
        raise HTTPException(404, "no such event")
    crop = st.store.snapshots and st.store.get_snapshot(event_id) is not None
    return {**ev.to_dict(), "has_snapshot": crop}


@router.get("/api/events/{event_id}/snapshot.jpg", summary="The face crop (only when snapshots are on)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def snapshot(st: State, _s: Guard, event_id: str) -> Response:
    jpeg = st.store.get_snapshot(event_id) if st.store.snapshots else None
    if jpeg is None:
        raise HTTPException(404, "no face crop for this event")
    return Response(jpeg, media_type="image/jpeg")


@router.get("/api/alarms", summary="Alarms, newest first")
def alarms(st: State, _s: Guard, unacknowledged: bool = False,
           kind: Annotated[str | None, Query(max_length=64)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
           ) -> list[dict[str, Any]]:
    found = st.store.alarms(kind=kind or None, unacknowledged=unacknowledged,
                            limit=min(limit, st.cfg.max_events_page), offset=offset)
    return [{**a.to_dict(), "acknowledged_by": a.acknowledged_by,
             "acknowledged_at": ts_text(a.acknowledged_at) if a.acknowledged_at else None} for a in found]


@router.post("/api/alarms/{alarm_id}/ack", summary="Acknowledge an alarm as the logged-in guard",
             responses={403: {"description": "a viewer, and viewers may not acknowledge"},
                        404: {"description": "no such unacknowledged alarm"},
                        503: {"description": "the store refused the write (disk full): try again"}})
def acknowledge(st: State, s: CsrfGuard, alarm_id: Annotated[str, PathParam(max_length=64)]) -> AckResult:
    if s.role != "operator" and not st.cfg.viewers_may_acknowledge:
        st.writes.audit(s.guard, "alarm_ack_refused", {"alarm_id": alarm_id, "role": s.role})
        raise HTTPException(403, "only operators may acknowledge alarms ([web] viewers_may_acknowledge)")
    try:
        done = st.writes.acknowledge_alarm(alarm_id, s.guard).result(timeout=10)
    except (StoreError, TimeoutError) as exc:
        log.error("alarm %s not acknowledged by %s: %s", alarm_id, s.guard, exc)
        raise HTTPException(503, f"the store did not take the acknowledgement: {exc}") from exc
    if not done:
        raise HTTPException(404, "no unacknowledged alarm with this id")
    st.writes.audit(s.guard, "alarm_ack", {"alarm_id": alarm_id})
    log.info("alarm %s acknowledged by %s", alarm_id, s.guard)
    return AckResult(id=alarm_id, acknowledged_by=s.guard)


@router.post("/api/open", summary="Open the gate by hand (operators; a reason is required)",
             responses={400: {"description": "no reason"}, 403: {"description": "not an operator"},
                        502: {"description": "the relay failed"}})
def manual_open(st: State, s: CsrfGuard, body: OpenRequest) -> OpenResult:
    if s.role != "operator":
        st.writes.audit(s.guard, "manual_open_refused", {"role": s.role})
        raise HTTPException(403, "only operators may open the gate")
    try:
        ev = st.gate.manual_open(s.guard, body.reason)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    except RelayError as exc:
        st.writes.audit(s.guard, "manual_open_failed", {"reason": body.reason, "error": str(exc)})
        raise HTTPException(502, f"relay failed: {exc}") from exc
    return OpenResult(event_id=ev.event_id, pulses=st.gate.relay_pulses())


def _operator(st: WebState, s: Session, action: str) -> None:
    if s.role != "operator":
        st.writes.audit(s.guard, f"{action}_refused", {"role": s.role})
        raise HTTPException(403, "only operators may hold the gate open or release it")
    if st.gate.hold_open is None or st.gate.release_hold is None:
        raise HTTPException(404, "this gate has no hold-open")


@router.post("/api/hold-open", summary="Hold the gate open for some minutes (operators; a reason is required)",
             responses={400: {"description": "no reason, or too many minutes"}, 403: {"description": "not an "
                        "operator"}})
def hold_open(st: State, s: CsrfGuard, body: HoldRequest) -> dict[str, Any]:
    _operator(st, s, "hold_open")
    assert st.gate.hold_open is not None and st.gate.lane_io is not None
    try:
        st.gate.hold_open(s.guard, body.reason, body.minutes)  # audited by the gate
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return st.gate.lane_io()


@router.post("/api/hold-open/release", summary="End a hold-open now (operators)",
             responses={403: {"description": "not an operator"}, 404: {"description": "nothing was held open"}})
def release_hold(st: State, s: CsrfGuard) -> dict[str, Any]:
    _operator(st, s, "hold_open_release")
    assert st.gate.release_hold is not None and st.gate.lane_io is not None
    if not st.gate.release_hold(s.guard):
        raise HTTPException(404, "the gate was not held open by a guard")
    return st.gate.lane_io()


@router.get("/api/persons", summary="The cached whitelist, searchable (no face templates)")
def persons(st: State, _s: Guard, q: Annotated[str | None, Query(max_length=100)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
            ) -> list[PersonOut]:
    found = st.store.list_persons(q or None, limit=min(limit, st.cfg.max_events_page), offset=offset)
    return [PersonOut.of(p) for p in found]


def _sse(kind: str, data: object) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def health_payload(st: WebState, request: Request) -> dict[str, Any]:
    """Health figures as text in the request's language, plus the unacknowledged alarm count."""
    has_sync, sync_ok = st.sync_health()
    t = st.translator(request)
    view = health_view(st.gate.health(), has_sync, sync_ok, t)
    view["unacked"] = len(st.store.alarms(unacknowledged=True, limit=1000))
    view["hold"] = hold_view(st.gate.lane_io() if st.gate.lane_io is not None else {}, t, st.tz)
    return view


@router.get("/api/stream", summary="Live decisions, alarms and health (text/event-stream)",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, st: State, s: Guard) -> StreamingResponse:
    """Ends with a `logout` event once the session does (logout, expiry, the guard disabled) and with a
    `reload` event when the guard's role changed, within one session check (0.5 s) plus STREAM_TICK_S."""
    t, role = st.translator(request), s.role

    async def events() -> AsyncIterator[str]:
        q = st.live.open()
        loop = asyncio.get_running_loop()
        next_health = loop.time()
        try:
            yield "retry: 2000\n\n"
            while True:
                if not s.holds(role):
                    log.info("live stream of %s ended: %s", s.guard, s.ended or "role changed")
                    yield _sse("logout" if s.ended else "reload", {})
                    return
                if not st.sessions.fresh():  # the guards cannot be re-read: end; the reconnect is checked
                    log.warning("live stream of %s ended: sessions not re-checked lately", s.guard)
                    return
                if loop.time() >= next_health:  # on schedule, however busy the gate is
                    next_health = loop.time() + HEALTH_EVERY_S
                    yield _sse("health", await asyncio.to_thread(health_payload, st, request))
                try:
                    item = await asyncio.wait_for(q.get(), max(0.05, min(STREAM_TICK_S, next_health - loop.time())))
                except TimeoutError:
                    continue
                if item is None:
                    return
                kind, payload = item
                if not s.holds(role):
                    continue  # nothing more for a session that has ended
                if kind == "decision":
                    name = payload.get("name")
                    yield _sse("decision", event_view(payload, name if isinstance(name, str) else None, t, st.tz))
                elif kind == "alarm":
                    yield _sse("alarm", alarm_view(payload, t, st.tz))
        finally:
            st.live.close_client(q)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/preview.mjpg", include_in_schema=False)
async def preview(st: State, s: Guard, frames: Annotated[int, Query(ge=0, le=100_000)] = 0) -> StreamingResponse:
    """The live camera view with face boxes and names; `frames` > 0 ends the stream after that many. The
    stream ends too once the guard's session does (logout, expiry, `gate guard disable`, a role change):
    no frame goes out after the session check that saw it."""
    role = s.role

    async def parts() -> AsyncIterator[bytes]:
        sent = 0
        while not st.live.closed and not st.gate.stopping() and (frames == 0 or sent < frames):
            jpeg = await asyncio.to_thread(st.gate.preview_jpeg)
            if not s.holds(role) or not st.sessions.fresh():  # after the (slow) frame, right before it goes
                log.info("preview of %s ended: %s", s.guard, s.ended or "role changed or not re-checked")
                return
            if jpeg:
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                       + b"\r\n\r\n" + jpeg + b"\r\n")
                sent += 1
            await asyncio.sleep(1.0 / PREVIEW_FPS)

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")
