"""A gate's grouped alarms at the hub, on both databases: an alarm without `count` (an older gate, or a
group's first message) is stored as before; an update of the group (same id, higher count) replaces it;
a re-sent or late older state, and the same id from another gate, change nothing."""

from __future__ import annotations

import json
from typing import Any

from edge.hub.db import HubDatabase
from edge.hub.ingest import checked, store
from edge.protocol.payloads import ALARM_SCHEMA
from edge.protocol.signing import SigningKey

KEY = SigningKey.generate()


def _alarm(**over: Any) -> dict[str, Any]:
    doc = {"schema": ALARM_SCHEMA, "id": "01JEALARMGROUP000000000001", "ts": "2026-12-01T08:00:00+00:00",
           "kind": "whitelist_rejected", "severity": "warning", "message": "whitelist push rejected",
           "details": {"code": "malformed_json"}, "gate_id": "north-1", "person_id": None, **over}
    return KEY.sign(doc)


def _stored(db: HubDatabase) -> list[tuple[Any, ...]]:
    return db.rows("SELECT id, gate_id, ts, seen_count, last_seen, body FROM alarms")


def test_a_group_update_replaces_the_stored_alarm_older_states_do_not(db: HubDatabase) -> None:
    store(db, [("alarms", "north-1", checked("alarms", _alarm()))], "hub-1")
    ((_, gate, ts, count, last, body),) = _stored(db)
    assert (gate, ts, count, last) == ("north-1", "2026-12-01T08:00:00.000000Z", 1, ts)
    assert "count" not in json.loads(body)  # what an older gate sends is stored as it was

    update = checked("alarms", _alarm(count=37, last_seen="2026-12-01T08:09:30+00:00", message="latest"))
    store(db, [("alarms", "north-1", update)], "hub-1")
    ((_, _, ts, count, last, body),) = _stored(db)
    assert (ts, count, last) == ("2026-12-01T08:00:00.000000Z", 37, "2026-12-01T08:09:30.000000Z")
    assert json.loads(body)["count"] == 37 and json.loads(body)["message"] == "latest"

    late = checked("alarms", _alarm(count=5, last_seen="2026-12-01T08:01:00+00:00"))
    again = checked("alarms", _alarm(count=37, last_seen="2026-12-01T08:09:30+00:00", message="re-sent"))
    other_gate = checked("alarms", _alarm(count=99, last_seen="2026-12-01T08:10:00+00:00", gate_id="south-2"))
    store(db, [("alarms", "north-1", late), ("alarms", "north-1", again), ("alarms", "south-2", other_gate)],
          "hub-1")
    ((_, gate, _, count, _, body),) = _stored(db)
    assert (gate, count, json.loads(body)["message"]) == ("north-1", 37, "latest")
