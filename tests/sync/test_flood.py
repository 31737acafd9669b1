"""Floods over a real broker: 1,000 junk pushes interleaved with 10 valid deltas (every delta applied
and acked, a few alarms); the intake queue shedding junk and never a signed push; a forged ack never
believed by the admin tool."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, Subscriber, delta, entry, wait_until

from edge.admin.client import AdminClient
from edge.admin.publish import push
from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, SigningKey, public_key_text
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.intake import Intake
from edge.sync.mqtt import MqttSync
from edge.sync.stats import SyncStats
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)
DELTA_TOPIC = f"edge-gate/{COMMUNITY}/whitelist/delta"


def test_junk_flood_with_ten_valid_deltas(broker: Mosquitto, store: Store) -> None:
    admin = AdminKey.generate()
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(admin.public)])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    server = Subscriber(broker.port, [TOPICS.whitelist_ack, TOPICS.available], client_id="admin")
    valid = [delta(admin, v, [entry(f"R{v}", v)]) for v in range(1, 11)]
    digests = {hashlib.sha256(p).hexdigest() for p in valid}
    forger = AdminKey.generate()
    sync.start()
    try:
        wait_until(lambda: server.on(TOPICS.available) == [b"online"], 10, "online")
        for i in range(1000):
            kind = i % 4
            junk = (b"\x00junk" if kind == 0 else b"{\"schema\": 1}" if kind == 1 else
                    delta(forger, 1 + i, [entry("R1", 1, status="blocked")]) if kind == 2 else
                    b"[" * 5000)
            server.publish(DELTA_TOPIC, junk)
            if i % 100 == 99:
                server.publish(DELTA_TOPIC, valid[i // 100])

        def applied() -> list[dict[str, Any]]:
            return [a for a in server.json_on(TOPICS.whitelist_ack)
                    if a.get("status") == "applied" and a.get("push_digest") in digests]
        wait_until(lambda: len(applied()) == 10, 120, "all ten deltas applied and acked")
        assert wl.version == 10 and all(store.get_person(f"R{v}") is not None for v in range(1, 11))
        assert store.get_person("R1").status == "active"  # type: ignore[union-attr]  # forged deltas changed nothing
        alarms = [a for a in store.alarms(limit=5000) if a.kind in ("whitelist_rejected", "intake_shed")]
        nacks = [a for a in server.json_on(TOPICS.whitelist_ack) if a.get("status") == "rejected"]
        print(f"flood: {len(alarms)} alarms, {len(nacks)} nacks for 1,000 junk pushes; "
              f"shed {sync.health()['intake_shed']}")
        assert len(alarms) <= 5, [(a.kind, a.details.get("code")) for a in alarms]
    finally:
        sync.stop()
        server.close()


class _Handler:
    """The applier's intake side, with a gate of its own: `authentic` is the real signature check."""

    def __init__(self, admin: AdminKey, store: Store) -> None:
        self.applier = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE)
        self.release = threading.Event()
        self.handled: list[bytes] = []

    def handle(self, raw: bytes, topic: str = "", retained: bool = False) -> dict[str, Any] | None:
        self.release.wait(30)  # a slow transaction: the queue fills behind it
        self.handled.append(raw)
        return self.applier.handle(raw, topic, retained)

    def handle_current(self, raw: bytes) -> dict[str, Any] | None:
        return None

    def authentic(self, raw: bytes) -> bool:
        return self.applier.authentic(raw)

    def tick(self) -> list[dict[str, Any]]:
        return []


def _msg(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


def test_a_full_intake_sheds_junk_and_keeps_every_signed_push(store: Store) -> None:
    admin = AdminKey.generate()
    handler = _Handler(admin, store)
    alarms: list[tuple[str, dict[str, Any]]] = []
    acks: list[dict[str, Any]] = []
    stats = SyncStats(logging.getLogger("test"))
    intake = Intake(TOPICS, stats, acks.append, whitelist=handler, capacity=8,
                    alarm=lambda kind, sev, text, details: alarms.append((kind, details)))
    intake.start()
    try:
        valid = [delta(admin, v, [entry(f"R{v}", v)]) for v in range(1, 6)]
        for i in range(200):
            intake.offer(_msg(DELTA_TOPIC, b"junk %d" % i))
            if i % 40 == 39:
                intake.offer(_msg(DELTA_TOPIC, valid[i // 40]))
        handler.release.set()
        wait_until(lambda: len([a for a in acks if a["status"] == "applied"]) == 5, 30, "the five deltas")
        assert handler.applier.version == 5
        assert stats.snapshot()["intake_shed"] >= 190  # 200 junk, a queue of 8
        assert [k for k, _ in alarms] == ["intake_shed"]  # once a minute, not once a message
        assert alarms[0][1]["dropped_since_last"] == 1
    finally:
        intake.stop(5)


def test_a_forged_ack_is_not_believed(broker: Mosquitto) -> None:
    """Nobody answers for the gate but a forger with the gate's name: the admin tool waits in vain."""
    admin, forger = AdminKey.generate(), SigningKey.generate()
    client = AdminClient(broker.url)
    spoof = Subscriber(broker.port, [DELTA_TOPIC], client_id="forger")
    stop = threading.Event()

    def forge() -> None:
        while not stop.is_set():
            for raw in spoof.on(DELTA_TOPIC):
                doc = {"schema": "edge-gate/whitelist-ack/2", "gate": GATE, "community": COMMUNITY,
                       "ts": "2026-12-01T00:00:00Z", "kind": "delta", "version": 1,
                       "push_digest": hashlib.sha256(raw).hexdigest(), "current_version": 1, "status": "applied",
                       "code": "ok", "message": "applied", "need_snapshot": False}
                spoof.publish(TOPICS.whitelist_ack, json.dumps(forger.sign(doc)))
            stop.wait(0.05)

    thread = threading.Thread(target=forge, daemon=True)
    thread.start()
    try:
        acks = push(client, COMMUNITY, "delta", [delta(admin, 1, [entry("R1", 1)], base=0)], 1, wait_acks=1,
                    timeout=10, gate_keys={GATE: GATE_KEY.public})
        assert acks == []
        assert any(t == TOPICS.whitelist_ack for t, _ in client.messages), "the forger did answer in time"
    finally:
        stop.set()
        thread.join(5)
        client.close()
        spoof.close()
