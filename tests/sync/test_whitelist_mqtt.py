"""Whitelist intake over a real broker: an admin's signed delta is applied and acked on
`whitelist/ack`; garbage is nacked with an alarm on `alarms`; a gate behind `whitelist/current` asks
for a snapshot."""

from __future__ import annotations

import json
from typing import Any

from sync_helpers import COMMUNITY, GATE, MODEL, Subscriber, delta, entry, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import CURRENT_SCHEMA
from edge.protocol.signing import AdminKey, public_key_text
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


def test_push_ack_nack_and_catch_up_over_mqtt(broker: Mosquitto, store: Store) -> None:
    admin = AdminKey.generate()
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(AdminKey.generate().public), public_key_text(admin.public)])
    reloads: list[int] = []
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE,
                          on_applied=reloads.append)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl)
    server = Subscriber(broker.port, [TOPICS.whitelist_ack, TOPICS.alarms, TOPICS.available], client_id="admin")
    sync.start()

    def acks() -> list[dict[str, Any]]:
        return server.json_on(TOPICS.whitelist_ack)

    try:
        wait_until(lambda: server.on(TOPICS.available) == [b"online"], 10, "online")
        wait_until(lambda: sync.health()["connected"], 5, "connected")
        server.publish(f"edge-gate/{COMMUNITY}/whitelist/delta", delta(admin, 1, [entry("R1", 1)], base=0))
        wait_until(lambda: len(acks()) == 1, 10, "the ack")
        assert acks()[0]["status"] == "applied" and acks()[0]["counts"]["templates"] == 1 and reloads == [1]
        assert store.get_person("R1") is not None

        server.publish(f"edge-gate/{COMMUNITY}/{GATE}/whitelist/delta", b"\x00 not json at all")
        wait_until(lambda: len(acks()) == 2 and server.on(TOPICS.alarms), 10, "the nack and its alarm")
        assert acks()[1]["status"] == "rejected" and acks()[1]["code"] == "malformed_json"
        alarm = json.loads(server.on(TOPICS.alarms)[0])
        assert alarm["kind"] == "whitelist_rejected" and alarm["details"]["code"] == "malformed_json"

        server.publish(TOPICS.whitelist_current, json.dumps({"schema": CURRENT_SCHEMA, "version": 9}), retain=True)
        wait_until(lambda: len(acks()) == 3, 10, "the catch-up request")
        assert acks()[2]["status"] == "outdated" and acks()[2]["need_snapshot"] is True
        assert sync.connected and wl.version == 1
    finally:
        sync.stop()
        server.close()
    late = Subscriber(broker.port, [TOPICS.whitelist_ack], client_id="late-admin")
    wait_until(lambda: late.json_on(TOPICS.whitelist_ack)[-1:] and
               late.json_on(TOPICS.whitelist_ack)[-1]["status"] == "outdated", 5, "the retained last ack")
    late.close()
