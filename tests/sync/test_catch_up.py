"""A gate that was offline catches up, over a real broker, with the admin code the CLI uses: the
community's latest delta stays retained next to the retained `whitelist/current` pointer, so a gate
that missed one delta applies it on reconnect; one that missed more refuses the retained delta as a
gap and, like the pointer, asks for a snapshot, which the admin's answer brings it up to date with.
A gate that is up to date hears nothing it has to answer. "Nothing more was answered" is checked with a
sentinel: a later live delta, whose ack comes after any ack the retained messages could cause."""

from __future__ import annotations

import json
from typing import Any

from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, Subscriber, entry, wait_until

from edge.admin.build import build_push
from edge.admin.client import AdminClient
from edge.admin.publish import push
from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import CURRENT_SCHEMA
from edge.protocol.signing import AdminKey, public_key_text
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


class Gate:
    """The gate's sync side over one store; `online()` / `offline()` start and stop its MqttSync."""

    def __init__(self, broker: Mosquitto, store: Store, admin: AdminKey) -> None:
        self.cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                              admin_public_keys=[public_key_text(admin.public)])
        self.store = store
        self.wl = WhitelistApplier(store, None, MODEL, self.cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
        self.sync: MqttSync | None = None

    def online(self) -> MqttSync:
        self.sync = MqttSync(self.cfg, self.store, gate_id=GATE, community=COMMUNITY, whitelist=self.wl,
                             key=GATE_KEY)
        self.sync.start()
        assert self.sync.wait_connected(10)
        return self.sync

    def offline(self) -> None:
        if self.sync is not None:
            self.sync.stop()
            self.sync = None


def live_acks(sub: Subscriber) -> list[dict[str, Any]]:
    with sub.lock:
        return [json.loads(p) for t, p, retained in sub.messages if t == TOPICS.whitelist_ack and not retained]


def test_offline_gate_catches_up_on_missed_deltas(broker: Mosquitto, store: Store) -> None:
    key = AdminKey.generate()
    gate = Gate(broker, store, key)
    admin = AdminClient(broker.url)
    sub = Subscriber(broker.port, [TOPICS.whitelist_ack, TOPICS.whitelist_current], client_id="server")

    def delta(version: int, upserts: list[dict[str, Any]], deletes: list[str] | None = None,
              acks: int = 0) -> list[dict[str, Any]]:
        payloads = build_push(key, COMMUNITY, "delta", upserts, deletes or [], version=version)
        return push(admin, COMMUNITY, "delta", payloads, version, wait_acks=acks, timeout=10,
                    gate_keys={GATE: GATE_KEY.public})

    def acks_up_to_sentinel(since: int, version: int) -> list[tuple[Any, ...]]:
        """Push a live delta (R2 again, unchanged) as a sentinel; the acks after `since` up to its ack."""
        delta(version, [entry("R2", 2)])
        wait_until(lambda: any(a["version"] == version for a in live_acks(sub)[since:]), 10, "the sentinel's ack")
        acks = live_acks(sub)[since:]
        upto = next(i for i, a in enumerate(acks) if a["version"] == version)
        assert (acks[upto]["status"], acks[upto]["need_snapshot"]) == ("applied", False)
        return [(a["status"], a["version"], a["need_snapshot"]) for a in acks[:upto]]

    try:
        sync = gate.online()
        first = delta(1, [entry("R1", 1)], acks=1)
        assert [a["status"] for a in first] == ["applied"] and gate.wl.version == 1
        wait_until(lambda: sync.health()["pushes"] == 2, 5, "the delta and the pointer handled")
        pointer = sub.json_on(TOPICS.whitelist_current)[-1]  # a delta moves the retained pointer too
        assert pointer["schema"] == CURRENT_SCHEMA and pointer["version"] == 1
        gate.offline()

        # one delta while the gate is away: on reconnect the retained delta applies, the pointer agrees
        delta(2, [entry("R2", 2)])
        acks_before = len(live_acks(sub))
        sync = gate.online()
        wait_until(lambda: gate.wl.version == 2, 10, "the missed delta to be applied")
        wait_until(lambda: sync.health()["pushes"] == 2, 5, "the retained delta and pointer handled")
        # only the caught-up delta's ack, no needless snapshot request, before the sentinel's
        assert acks_up_to_sentinel(acks_before, 3) == [("applied", 2, False)]
        assert store.get_person("R2") is not None
        gate.offline()

        # up to date, reconnecting: the retained delta is no replay to refuse, nothing is answered or alarmed
        alarms = len(store.alarms(kind="whitelist_rejected"))
        acks_before = len(live_acks(sub))
        sync = gate.online()
        wait_until(lambda: sync.health()["pushes"] == 2, 5, "the retained messages handled")
        assert acks_up_to_sentinel(acks_before, 4) == []
        assert len(store.alarms(kind="whitelist_rejected")) == alarms
        gate.offline()

        # two deltas while away: the retained one (6 on 5) is a gap on version 4, so the gate asks for a
        # snapshot, and so does the pointer (6 > 4); nothing of the two is applied halfway
        delta(5, [entry("R3", 3)])
        delta(6, [entry("R4", 4)], deletes=["R1"])
        acks_before = len(live_acks(sub))
        sync = gate.online()
        wait_until(lambda: len(live_acks(sub)) >= acks_before + 2, 10, "the gate asking for a snapshot")
        asks = live_acks(sub)[acks_before:]
        assert [(a["kind"], a["code"], a["need_snapshot"], a["current_version"]) for a in asks] == [
            ("delta", "version_gap", True, 4), ("current", "behind", True, 4)]
        assert gate.wl.version == 4 and store.get_person("R3") is None and store.get_person("R1") is not None

        # the admin (the server, in production) answers with a snapshot: the gate is up to date
        snap = build_push(key, COMMUNITY, "snapshot", [entry("R2", 2), entry("R3", 3), entry("R4", 4)], [],
                          version=7)
        done = push(admin, COMMUNITY, "snapshot", snap, 7, wait_acks=1, timeout=10, gate_keys={GATE: GATE_KEY.public})
        assert [(a["status"], a["counts"]["deleted"]) for a in done] == [("applied", 1)] and gate.wl.version == 7
        assert store.get_person("R1") is None and store.get_person("R4") is not None
        gate.offline()

        # the snapshot cleared the retained delta: a reconnecting gate gets only the pointer, and says nothing
        acks_before = len(live_acks(sub))
        sync = gate.online()
        wait_until(lambda: sync.health()["pushes"] == 1, 5, "the pointer handled")
        deltas = Subscriber(broker.port, [f"{TOPICS.community_base}/whitelist/delta"], client_id="late-reader")
        try:
            assert acks_up_to_sentinel(acks_before, 8) == []
            wait_until(lambda: deltas.messages, 10, "the sentinel delta at a fresh reader")
            # a retained delta would have come to the fresh reader before the live sentinel
            _topic, first, retained = deltas.messages[0]
            assert (retained, json.loads(first)["version"]) == (False, 8)
        finally:
            deltas.close()
    finally:
        gate.offline()
        admin.close()
        sub.close()
