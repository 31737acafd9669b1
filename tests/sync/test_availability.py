"""Availability and state like Home Assistant expects: retained state, then `online`; `stopped` on a
clean exit (LWT `offline` after SIGKILL is covered in test_outbox_drain); connected only on a
successful CONNACK; broker credentials from a secret reference."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import COMMUNITY, GATE, GATE_KEY, Subscriber, wait_until

from edge import __version__
from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import EVENT_SCHEMA, StateMessage
from edge.protocol.signing import SigningKey, verify
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.members import MemberGates
from edge.sync.mqtt import MqttSync
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


def test_state_then_online_retained_then_stopped(broker: Mosquitto, store: Store) -> None:
    sub = Subscriber(broker.port, [TOPICS.available, TOPICS.state])
    calls: list[float] = []

    def state() -> dict[str, Any]:
        calls.append(time.monotonic())
        return {"uptime_s": 12.5, "whitelist": {"version": 7, "persons": 1, "templates": 1, "model": "m",
                                                "need_snapshot": False, "member_gates": 0},
                "panel": {"type": "osdp", "malformed_frames": 3}}  # the page's, not the state's: left out

    cfg = MqttConfig(enabled=True, url=broker.url, state_interval_s=1, reconnect_min_s=0.1)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, state=state, key=GATE_KEY)
    sync.start()
    try:
        wait_until(lambda: sub.on(TOPICS.available) == [b"online"], 10, "online")
        order = [t for t, _, _ in sub.messages]
        assert order.index(TOPICS.state) < order.index(TOPICS.available)  # state first, then online
        raw = json.loads(sub.on(TOPICS.state)[0])
        doc = StateMessage.model_validate(raw)  # closed, signed
        assert verify(raw, [GATE_KEY.public]) == GATE_KEY.key_id and raw["ts"].endswith("Z")
        assert doc.uptime_s == 12.5 and doc.whitelist is not None and doc.whitelist.version == 7
        assert doc.sync.connected is True and doc.sync.outbox_depth == 0 and doc.gate == GATE
        assert doc.software_version == __version__  # which release runs on the gate

        late = Subscriber(broker.port, [TOPICS.available, TOPICS.state], client_id="late")
        wait_until(lambda: late.on(TOPICS.available) == [b"online"] and late.on(TOPICS.state), 5, "retained")
        assert all(r for _, _, r in late.messages)  # both arrive as retained messages
        late.close()
        wait_until(lambda: len(sub.on(TOPICS.state)) >= 2, 5, "the periodic state")  # every state_interval_s
    finally:
        sync.stop()
    wait_until(lambda: sub.on(TOPICS.available)[-1:] == [b"stopped"], 10, "stopped (delivered after the PUBACK)")
    after = Subscriber(broker.port, [TOPICS.available], client_id="after")
    wait_until(lambda: after.on(TOPICS.available) == [b"stopped"], 5, "retained stopped")
    after.close()
    sub.close()


@pytest.mark.parametrize("password, ok", [("s3cret-Pw", True), ("wrong", False)])
def test_connected_only_on_a_successful_connack(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture, password: str, ok: bool) -> None:
    cred_dir = tmp_path / "creds"
    cred_dir.mkdir()
    (cred_dir / "mqtt-password").write_text(password + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(cred_dir))
    with Mosquitto(tmp_path / "broker", users={GATE: "s3cret-Pw"}) as broker:
        cfg = MqttConfig(enabled=True, url=broker.url, username=GATE, password_secret="{cred:mqtt-password}",
                         reconnect_min_s=0.1, reconnect_max_s=0.2)
        sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY)
        sync.start()
        try:
            if ok:
                assert sync.wait_connected(10)
            else:
                def refusals() -> int:
                    return sum("refused" in r.getMessage() for r in list(caplog.records))
                wait_until(lambda: refusals() >= 3, 30, "three refused attempts")
                health = sync.health()
                assert not sync.connected and not health["connected"] and health["connects"] == 0
                assert "refused" in health["last_error"]
        finally:
            sync.stop()


def test_peer_gate_events_reach_the_callback_and_bad_ones_are_counted(broker: Mosquitto, store: Store) -> None:
    got: list[dict[str, Any]] = []
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1)
    gate_b, impostor = SigningKey.generate(), SigningKey.generate()
    members = MemberGates([("gate-b", gate_b.public_text), ("gate-c", impostor.public_text)])
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, on_peer_event=got.append, members=members)
    sync.start()
    admin = Subscriber(broker.port, [TOPICS.available], client_id="peer")
    try:
        assert sync.wait_connected(10)
        wait_until(lambda: admin.on(TOPICS.available) == [b"online"], 5, "online")
        peer = f"edge-gate/{COMMUNITY}/gate-b/events"
        event = {"schema": EVENT_SCHEMA, "event_id": "01J0000000000000000000000A", "ts":
                 "2026-11-22T12:00:00.000000Z", "gate_id": "gate-b", "direction": "in", "person_id": "R1",
                 "decision": "grant", "reasons": [], "alarms": [], "temperature": None, "scores": None}
        admin.publish(peer, b"{not json")
        admin.publish(peer, json.dumps({**event, "gate_id": "gate-c"}))  # claims another gate
        admin.publish(peer, json.dumps(event))  # unsigned
        admin.publish(peer, json.dumps(impostor.sign(event)))  # another member's key
        admin.publish(peer, json.dumps(gate_b.sign(event)))
        admin.publish(TOPICS.events, json.dumps(GATE_KEY.sign({**event, "gate_id": GATE})))  # own topic: no peer
        wait_until(lambda: len(got) == 1 and sync.health()["peer_rejected"] == 4, 5, "peer events")
        assert got[0]["person_id"] == "R1" and got[0]["gate_id"] == "gate-b" and sync.connected
    finally:
        admin.close()
        sync.stop()
