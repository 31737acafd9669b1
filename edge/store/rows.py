"""Decoding table rows into records (`edge.records`), and the outbox row the sync's drainer reads."""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.records import AlarmRecord, EventRecord, PersonRecord, WeeklySchedule, parse_ts


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event_id: str
    topic_kind: str
    payload: str  # the JSON text to publish, as written
    created_at: datetime



@functools.lru_cache(maxsize=4096)
def _json_tuple(text: str) -> tuple[Any, ...]:
    """A stored JSON list as a tuple; memoised, as a 100,000-person whitelist repeats a handful of them."""
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else (value,)


def person_from_row(row: sqlite3.Row) -> PersonRecord:
    schedule = json.loads(row["schedule"]) if row["schedule"] is not None else None
    return PersonRecord(
        id=row["id"], name=row["name"], kind=row["kind"], status=row["status"],
        valid_from=parse_ts(row["valid_from"]) if row["valid_from"] else None,
        valid_until=parse_ts(row["valid_until"]) if row["valid_until"] else None,
        max_uses=row["max_uses"], uses=row["uses"], allowed_gates=_json_tuple(row["allowed_gates"]),
        directions=_json_tuple(row["directions"]),
        schedule=WeeklySchedule.from_json(schedule) if schedule is not None else None,
        care_watch_hours=row["care_watch_hours"], unit=row["unit"],
        updated_at=parse_ts(row["updated_at"]), card=row["card"],
    )


def event_from_row(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        event_id=row["event_id"], ts=parse_ts(row["ts"]), gate_id=row["gate_id"],
        direction=row["direction"], person_id=row["person_id"],
        decision=row["decision"], reasons=tuple(json.loads(row["reasons"])),
        alarms=tuple(json.loads(row["alarms"])),
        temperature=json.loads(row["temperature"]) if row["temperature"] is not None else None,
        scores=json.loads(row["scores"]) if row["scores"] is not None else None, synced=bool(row["synced"]))


def alarm_from_row(row: sqlite3.Row) -> AlarmRecord:
    return AlarmRecord(
        id=row["id"], ts=parse_ts(row["ts"]), kind=row["kind"], severity=row["severity"],
        message=row["message"], details=json.loads(row["details"]), gate_id=row["gate_id"],
        person_id=row["person_id"], acknowledged_by=row["acknowledged_by"],
        acknowledged_at=parse_ts(row["acknowledged_at"]) if row["acknowledged_at"] else None,
        count=row["count"], last_seen=parse_ts(row["last_seen"]) if row["last_seen"] else None)
