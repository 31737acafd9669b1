"""The hub running against a real broker and the real MQTT side of a gate, on both databases: a new gate
is brought up to date by a snapshot it did not have to ask a person for; each register change reaches
it as a signed delta; the hub keeps the version each gate acknowledged; events are archived once,
and nothing from an unregistered or forged gate is stored."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.wait import wait_until

from edge.config.mqtt import MqttConfig
from edge.hub.config import HubConfig, HubSection
from edge.hub.db import HubDatabase
from edge.hub.service import Hub
from edge.protocol.payloads import EVENT_SCHEMA
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto
from tests.hub.test_register import MODEL, person

COMMUNITY = "maple"


class Running:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.stop = threading.Event()
        self.thread = threading.Thread(target=hub.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        wait_until(self.hub.connected.is_set, 30, "the hub connected")
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def gate(broker: Mosquitto, tmp_path: Path, admin: AdminKey) -> Iterator[tuple[MqttSync, WhitelistApplier, SigningKey]]:
    key = SigningKey.generate()
    store = Store.open(tmp_path / "gate.sqlite")
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, admin_public_keys=[admin.public_text],
                     snapshot_reask_min_s=1)
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id="north-1")
    sync = MqttSync(cfg, store, gate_id="north-1", community=COMMUNITY, whitelist=wl, key=key)
    yield sync, wl, key
    sync.stop()
    store.close()


@pytest.fixture
def admin() -> AdminKey:
    return AdminKey.generate()


def hub_for(broker: Mosquitto, db: HubDatabase, admin: AdminKey, tmp_path: Path) -> Hub:
    cfg = HubConfig(hub=HubSection(community=COMMUNITY, data_dir=tmp_path / "hub", snapshot_min_interval_s=0),
                    mqtt=MqttConfig(url=broker.url))
    return Hub(cfg, db, admin)


def test_a_new_gate_gets_a_snapshot_then_every_change_as_a_delta(
        broker: Mosquitto, db: HubDatabase, admin: AdminKey, tmp_path: Path,
        gate: tuple[MqttSync, WhitelistApplier, SigningKey]) -> None:
    sync, wl, key = gate
    hub = hub_for(broker, db, admin, tmp_path)
    reg = hub.register
    reg.set_gate("north-1", key.public_text, "admin")
    reg.upsert([person("R1", 1), person("R2", 2), person("V1", 3, kind="visitor", max_uses=2)], "admin")
    with Running(hub):
        wait_until(lambda: reg.unpublished() == [], 30, "both changes published before the gate comes")
        sync.start()  # a gate at version 0: the retained delta 2 does not build on it; it asks; the hub answers
        wait_until(lambda: wl.version == 2, 60, "the snapshot the hub sent by itself")
        assert wl.store.count_persons() == 3 and len(wl.members) == 1
        assert hub.counts["snapshots"] >= 1
        wait_until(lambda: [g["acked_version"] for g in hub.gate_status()] == [2], 30, "the ack kept by the hub")

        reg.patch("R1", {"status": "suspended"}, "admin")
        wait_until(lambda: wl.version == 3, 30, "the delta of the suspension")
        assert wl.store.get_person("R1").status == "suspended"  # type: ignore[union-attr]
        reg.delete(["V1"], "admin")
        wait_until(lambda: wl.version == 4 and wl.store.get_person("V1") is None, 30, "the delete")
        wait_until(lambda: hub.gate_status()[0]["acked_version"] == 4, 30, "acked 4")
        assert hub.gate_status()[0]["last_ack"]["status"] == "applied"
        assert reg.unpublished() == []


def test_events_are_archived_once_and_forgeries_are_not(
        broker: Mosquitto, db: HubDatabase, admin: AdminKey, tmp_path: Path) -> None:
    north, forger = SigningKey.generate(), SigningKey.generate()
    hub = hub_for(broker, db, admin, tmp_path)
    hub.register.set_gate("north-1", north.public_text, "admin")
    event = {"schema": EVENT_SCHEMA, "event_id": "01JE00000000000000000000EV", "ts": "2026-12-01T08:00:00.000000Z",
             "gate_id": "north-1", "direction": "in", "person_id": "R1", "decision": "grant", "reasons": [],
             "alarms": [], "temperature": None, "scores": None}
    base = f"edge-gate/{COMMUNITY}"
    hub.handle(f"{base}/north-1/events", json.dumps(north.sign(event)).encode())
    hub.handle(f"{base}/north-1/events", json.dumps(north.sign(event)).encode())  # a QoS 1 re-send
    hub.handle(f"{base}/north-1/events", json.dumps(forger.sign({**event, "event_id": "X1"})).encode())
    hub.handle(f"{base}/north-1/events", json.dumps({**event, "event_id": "X2"}).encode())  # unsigned
    hub.handle(f"{base}/gate-evil/events", json.dumps(forger.sign({**event, "gate_id": "gate-evil"})).encode())
    hub.handle(f"{base}/north-1/events", json.dumps(north.sign({**event, "gate_id": "south-2"})).encode())
    hub.handle(f"{base}/north-1/events", b"\x00 not json")
    stored = db.rows("SELECT event_id, gate_id, person_id FROM events")
    assert stored == [("01JE00000000000000000000EV", "north-1", "R1")]
    assert hub.counts["unverified"] == 5
    raised = sorted((a["kind"], a["gate_id"]) for a in hub.watch.alarms())  # reported once each, not trusted
    assert raised == [("forged_message", "north-1"), ("unknown_gate", "gate-evil")]
