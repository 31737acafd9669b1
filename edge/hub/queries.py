"""What the hub answers about its archive and its gates: events by gate, person and time, the hub's own
alarms, and the gate board (each gate's availability, last state, acked version, last event)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edge.hub.db import HubDatabase
from edge.records import ts_text

JsonDict = dict[str, Any]


def events(db: HubDatabase, *, gate: str | None = None, person: str | None = None, since: datetime | None = None,
           limit: int = 1000) -> list[JsonDict]:
    """Archived events (as the gates signed them), oldest first."""
    where: list[str] = []
    params: list[Any] = []
    if gate:
        where.append("gate_id = ?")
        params.append(gate)
    if person:
        where.append("person_id = ?")
        params.append(person)
    if since is not None:
        where.append("ts >= ?")
        params.append(ts_text(since))
    sql = "SELECT body FROM events" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ts, event_id"
    sql += " LIMIT ?"
    params.append(max(1, min(int(limit), 1_000_000)))
    return [json.loads(r[0]) for r in db.rows(sql, params)]


def last_grant(db: HubDatabase, person_id: str) -> str | None:
    """When the person last passed any gate (a grant), as the gate wrote it; None: never."""
    row = db.one("SELECT MAX(ts) FROM events WHERE person_id = ? AND decision = 'grant'", (person_id,))
    return row[0] if row and row[0] else None


def board(db: HubDatabase) -> list[JsonDict]:
    """Per registered gate: availability, last state summary, acked version, last event, silence."""
    seen = {r[0]: r for r in db.rows("SELECT gate_id, available, available_at, state, state_at FROM gate_seen")}
    acks = {r[0]: r for r in db.rows("SELECT gate_id, version, status, code, need_snapshot, ts FROM gate_acks")}
    last = dict(db.rows("SELECT gate_id, MAX(ts) FROM events GROUP BY gate_id"))
    out = []
    for gate_id, _key in db.rows("SELECT gate_id, public_key FROM gates ORDER BY gate_id"):
        s, a = seen.get(gate_id), acks.get(gate_id)
        state = json.loads(s[3]) if s and s[3] else {}
        sync = state.get("sync") or {}
        out.append({
            "gate_id": gate_id, "available": s[1] if s else None, "available_at": s[2] if s else None,
            "state_at": s[4] if s else None, "software_version": state.get("software_version"),
            "outbox_depth": sync.get("outbox_depth"), "connected": sync.get("connected"),
            "whitelist_version": (state.get("whitelist") or {}).get("version"),
            "acked_version": a[1] if a else None,
            "last_ack": None if a is None else {"status": a[2], "code": a[3], "need_snapshot": bool(a[4]), "ts": a[5]},
            "last_event": last.get(gate_id)})
    return out
