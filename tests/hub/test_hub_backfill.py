"""Backfill: a gate that was away asks the hub, on connecting, for the other gates' grants it missed, and
gets them signed by the admin key (its own gates' and other people's denials left out); after a loss it
asks only from the moment of the loss; `more` pages are followed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.wait import wait_until

from edge.config.mqtt import MqttConfig
from edge.hub.db import HubDatabase
from edge.hub.ingest import store
from edge.protocol.payloads import EVENT_SCHEMA, Passages
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.backfill import MARGIN, Backfill
from edge.sync.mqtt import MqttSync
from edge.tools.broker import Mosquitto
from tests.hub.test_hub_service import Running, hub_for


def _event(n: int, gate: str, person: str, when: datetime, decision: str = "grant") -> dict[str, Any]:
    return {"schema": EVENT_SCHEMA, "event_id": f"01B{n:023d}", "ts": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "gate_id": gate, "direction": "in", "person_id": person, "decision": decision, "reasons": [],
            "alarms": [], "temperature": None, "scores": None}


def test_a_gate_coming_back_gets_the_grants_it_missed(broker: Mosquitto, db: HubDatabase, tmp_path: Path) -> None:
    admin, north = AdminKey.generate(), SigningKey.generate()
    hub = hub_for(broker, db, admin, tmp_path)
    hub.register.set_gate("north-1", north.public_text, "admin")
    hub.register.set_gate("south-2", SigningKey.generate().public_text, "admin")
    now = datetime.now(UTC)
    store(db, [("events", "south-2", _event(1, "south-2", "V100", now - timedelta(hours=2))),
               ("events", "south-2", _event(2, "south-2", "R1", now - timedelta(minutes=5))),
               ("events", "south-2", _event(3, "south-2", "R2", now - timedelta(minutes=4), "deny")),
               ("events", "north-1", _event(4, "north-1", "R3", now - timedelta(minutes=3))),
               ("events", "south-2", _event(5, "south-2", "R4", now - timedelta(days=3)))], "1")
    got: list[Passages] = []
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, admin_public_keys=[admin.public_text])
    with Store.open(tmp_path / "gate.sqlite") as gate_store, Running(hub):
        sync = MqttSync(cfg, gate_store, gate_id="north-1", community="maple", key=north, on_passages=got.append)
        sync.start()
        try:
            wait_until(lambda: got, 30, "the hub's backfill")
        finally:
            sync.stop()
    answer = got[0]
    assert [(p.person_id, p.gate_id) for p in answer.passages] == [("V100", "south-2"), ("R1", "south-2")]
    assert not answer.more and answer.gate == "north-1"  # not its own, not denials, not beyond 24 h


def test_after_a_loss_the_request_starts_at_the_loss() -> None:
    t = [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    bf = Backfill(SigningKey.generate(), "north-1", 24, clock=lambda: t[0])
    first = json.loads(bf.on_link(True) or "{}")
    assert first["since"].startswith("2026-11-30T08:00:00")  # 24 h back at start
    assert bf.on_link(True) is None  # reconnected without a loss: nothing to ask
    t[0] += timedelta(hours=1)
    bf.on_link(False)
    t[0] += timedelta(minutes=10)
    again = json.loads(bf.on_link(True) or "{}")
    assert again["since"] == (datetime(2026, 12, 1, 9, 0, tzinfo=UTC) - MARGIN).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert again["signature"]["alg"] == "ed25519" and again["gate"] == "north-1"
