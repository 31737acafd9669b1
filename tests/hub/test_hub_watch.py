"""The hub's community-wide watch on both databases: one care-watch alarm per resident and absence,
whichever gate they last passed, acknowledged once; a gate that goes quiet (or `offline`) raises one
gate_silent alarm; and the hub's signed heartbeat, which gates use to leave the care watch to it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.wait import wait_until

from edge.hub.db import HubDatabase
from edge.hub.register import Register
from edge.hub.watch import Watch
from edge.protocol.payloads import EVENT_SCHEMA, HubState
from edge.protocol.signing import AdminKey, SigningKey
from edge.protocol.topics import Topics
from edge.sync.intake import Intake
from edge.sync.stats import SyncStats
from edge.tools.broker import Mosquitto
from tests.hub.test_hub_service import Running, hub_for
from tests.hub.test_register import person
from tests.sync.sync_helpers import Subscriber

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _grant(db: HubDatabase, gate: str, pid: str, when: datetime) -> None:
    ts = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"schema": EVENT_SCHEMA, "event_id": f"E{gate}{pid}{when.timestamp():.0f}", "ts": ts, "gate_id": gate,
            "person_id": pid, "decision": "grant"}
    with db.tx():
        db.execute("INSERT INTO events (event_id, gate_id, ts, person_id, decision, body, stored_by) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?)", (body["event_id"], gate, ts, pid, "grant", json.dumps(body), "1"))


def test_one_care_alarm_per_absence_for_the_whole_community(db: HubDatabase) -> None:
    clock = Clock()
    reg = Register(db, clock)
    reg.upsert([person("R1", 1, care_watch_hours=2), person("R2", 2, care_watch_hours=2), person("R3", 3)], "office")
    watch = Watch(db, clock=clock)
    _grant(db, "north-1", "R1", T0)
    _grant(db, "south-2", "R2", T0 + timedelta(minutes=90))  # seen later, at another gate
    clock.now = T0 + timedelta(hours=2, minutes=30)
    raised = watch.check()
    assert [(a["kind"], a["person_id"]) for a in raised] == [("care_watch", "R1")]
    assert watch.check() == []  # once per absence, however often it is checked (or however many gates)
    clock.now += timedelta(hours=1)
    assert [a["person_id"] for a in watch.check()] == ["R2"]
    (r1,) = [a for a in watch.alarms(open_only=True) if a["person_id"] == "R1"]
    assert r1["details"]["last_seen"].startswith("2026-12-01T08:00:00")
    assert watch.acknowledge(r1["id"], "office-li") and not watch.acknowledge(r1["id"], "office-wang")
    assert [a["person_id"] for a in watch.alarms(open_only=True)] == ["R2"]
    _grant(db, "north-1", "R1", clock.now)  # back: a new absence may raise a new alarm later
    clock.now += timedelta(hours=3)
    assert sorted(a["person_id"] for a in watch.check()) == ["R1"]  # R2's absence already has its alarm


def test_a_quiet_or_offline_gate_raises_one_alarm(db: HubDatabase) -> None:
    clock = Clock()
    reg = Register(db, clock)
    reg.set_gate("north-1", SigningKey.generate().public_text, "office")
    reg.set_gate("south-2", SigningKey.generate().public_text, "office")
    reg.set_gate("east-3", SigningKey.generate().public_text, "office")  # never heard of: not installed yet
    watch = Watch(db, gate_silent_after_s=120, clock=clock)
    _grant(db, "north-1", "R1", T0)
    with db.tx():
        db.execute("INSERT INTO gate_seen (gate_id, available, available_at) VALUES (?, ?, ?)",
                   ("south-2", "offline", "2026-12-01T08:00:00.000000Z"))
    clock.now = T0 + timedelta(seconds=60)
    assert [(a["kind"], a["gate_id"]) for a in watch.check()] == [("gate_silent", "south-2")]  # the broker said so
    clock.now = T0 + timedelta(seconds=200)
    assert [(a["kind"], a["gate_id"]) for a in watch.check()] == [("gate_silent", "north-1")]
    assert watch.check() == []


def test_the_hub_heartbeat_is_signed_and_cleared_when_the_hub_stops(broker: Mosquitto, db: HubDatabase,
                                                                   tmp_path: Path) -> None:
    admin = AdminKey.generate()
    hub = hub_for(broker, db, admin, tmp_path)
    got: list[HubState | None] = []
    topics = Topics("edge-gate", "maple", "north-1")
    intake = Intake(topics, SyncStats(logging.getLogger("t")), lambda ack: None,
                    on_hub_state=got.append, hub_keys=[admin.public])
    forged = AdminKey.generate().sign({"schema": "edge-gate/hub-state/2", "community": "maple",
                                       "ts": "2026-12-01T08:00:00Z", "version": 1, "care_watch": True,
                                       "interval_s": 30})
    intake.hub_state(json.dumps(forged).encode())
    assert got == []  # not signed by an admin key the gate trusts
    watcher = Subscriber(broker.port, [topics.hub_state], client_id="gate-side")
    try:
        with Running(hub):
            wait_until(lambda: watcher.on(topics.hub_state), 30, "the hub's heartbeat")
            intake.hub_state(watcher.on(topics.hub_state)[0])
            assert got and got[0] is not None and got[0].care_watch and got[0].community == "maple"
        wait_until(lambda: watcher.on(topics.hub_state)[-1:] == [b""], 30, "the heartbeat cleared")
        intake.hub_state(b"")
        assert got[-1] is None
    finally:
        watcher.close()
