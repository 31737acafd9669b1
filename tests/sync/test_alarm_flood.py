"""An alarm flood end to end: a real MqttSync gate on a real Mosquitto gets 1,000 junk and unsigned
whitelist pushes, each one alarmed (the sync's own one-a-minute throttle is run on a clock that moves a
minute per push, so only the store's grouping stands between the flood and the guards). The store ends
with one alarm row per source counting them all, and the broker sees one alarm message per row, then
one update per row once its window has passed."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, Subscriber, delta, entry, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import AlarmMessage
from edge.protocol.signing import AdminKey, public_key_text, verify
from edge.protocol.topics import Topics
from edge.store import AlarmRecord, Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)
DELTA_TOPIC = f"edge-gate/{COMMUNITY}/whitelist/delta"
PUSHES = 1000


def test_a_thousand_junk_pushes_make_a_few_alarm_rows_and_messages(broker: Mosquitto, store: Store) -> None:
    admin, forger = AdminKey.generate(), AdminKey.generate()
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(admin.public)])
    minutes = itertools.count(0.0, 61.0)  # every throttle check sees a minute gone: every rejection is alarmed
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE,
                          monotonic=lambda: next(minutes))

    def alarm(kind: str, severity: str, message: str, details: dict[str, Any]) -> None:  # as the gate does
        store.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind=kind, severity=severity, message=message,
                                       details=details, gate_id=GATE))

    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY, alarm=alarm)
    server = Subscriber(broker.port, [TOPICS.alarms, TOPICS.available], client_id="hub")

    def gate_alarms() -> list[bytes]:
        return [p for p in server.on(TOPICS.alarms) if not p.startswith(b"sentinel")]

    def all_delivered(n: int) -> None:
        """Every alarm row the gate queued is PUBACKed and, past a sentinel sent after it, received."""
        wait_until(lambda: store.outbox_depth() == 0, 30, "the outbox to drain")
        server.publish(TOPICS.alarms, b"sentinel-%d" % n)
        wait_until(lambda: f"sentinel-{n}".encode() in server.on(TOPICS.alarms), 30, "the sentinel")

    def rejected() -> list[AlarmRecord]:
        return [a for a in store.alarms(limit=10_000) if a.kind == "whitelist_rejected"]

    sync.start()
    try:
        wait_until(lambda: server.on(TOPICS.available) == [b"online"], 10, "online")
        for i in range(PUSHES):
            kind = i % 4
            junk = (b"\x00junk %d" % i if kind == 0 else b"{\"schema\": %d}" % i if kind == 1 else
                    delta(forger, 1 + i, [entry("R1", 1)]) if kind == 2 else b"[" * 5000)
            server.publish(DELTA_TOPIC, junk)
        # processed: every push is counted on an alarm, or was shed unread under the flood
        wait_until(lambda: sum(a.count for a in rejected()) + sync.health()["intake_shed"] == PUSHES, 120,
                   "every junk push to be rejected (or shed) and counted")
        rows = store.alarms(limit=10_000)
        groups = rejected()
        print(f"alarm flood: {PUSHES} junk pushes -> {len(rows)} alarm rows "
              f"({[(a.details['code'], a.count) for a in groups]}), shed {sync.health()['intake_shed']}")
        assert len(rows) <= 5, [(a.kind, a.details.get("code"), a.count) for a in rows]
        assert {a.details["code"] for a in groups} <= {"malformed_json", "unknown_schema", "bad_signature"}
        assert max(a.count for a in groups) >= 100  # the grouping held them, not a throttle
        assert store.alarm_rows() == len(rows)

        all_delivered(1)
        first = [json.loads(p) for p in gate_alarms()]
        assert len(first) == len(rows) and {m["id"] for m in first} == {a.id for a in rows}  # one each, at once

        # a window later the supervisor's flush sends each grown group's state once, with its count
        assert store.flush_alarm_groups(now=datetime.now(UTC) + store.alarm_window) == \
            sum(a.count > 1 for a in rows)
        all_delivered(2)
        updates = [json.loads(p) for p in gate_alarms()][len(first):]
        by_id = {a.id: a for a in store.alarms(limit=10_000)}
        assert updates and len(updates) <= len(rows)
        for doc in updates:
            verify(doc, [GATE_KEY.public])
            msg = AlarmMessage.model_validate(doc)
            assert msg.count == by_id[msg.id].count and msg.last_seen is not None
        print(f"alarm flood: {len(first) + len(updates)} alarm messages on the broker for {PUSHES} pushes")
        assert len(first) + len(updates) <= 10
    finally:
        sync.stop()
        server.close()
