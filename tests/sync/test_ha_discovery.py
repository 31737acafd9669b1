"""The pure side of Home Assistant discovery (edge.sync.ha_discovery) and its config section: the configs
follow HA's schema and name only the gate's topics, the button is absent without its secret, the
`ha/...` states follow decisions and alarms (the fire input's `fire_release` included) and carry no face
data, bad input gives no update; the button cannot be turned on without a secret given by reference.
The same against a real broker and a running gate: tests/gate/test_gate_ha.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.config.homeassistant import HomeAssistantConfig
from edge.config.mqtt import SecretError
from edge.protocol.topics import Topics
from edge.sync.ha_discovery import HaTopics, discovery_configs, state_updates

NAMES = HaTopics(Topics("edge-gate", "sunny", "north.1"), "homeassistant")


def test_configs_follow_the_discovery_schema_and_name_the_gates_topics() -> None:
    configs = discovery_configs(NAMES, alarm_hold_s=30, button_secret=None)
    assert NAMES.node_id == "sunny_north_1"  # a node id is [A-Za-z0-9_-]
    button = "homeassistant/button/sunny_north_1/open/config"
    assert configs[button] == ""  # an empty retained config: no button (and an old one removed)
    entities = {t: json.loads(p) for t, p in configs.items() if p}
    assert len(entities) == 8 and set(configs) == set(NAMES.config_topics())
    assert len({c["unique_id"] for c in entities.values()}) == 8
    for topic, c in entities.items():
        component, node, object_id, last = topic.split("/")[1:]
        assert (node, last) == ("sunny_north_1", "config") and component in ("sensor", "binary_sensor")
        assert c["unique_id"].endswith(object_id) and c["device"]["identifiers"] == ["edge-gate_sunny_north_1"]
        assert c["state_topic"].startswith("edge-gate/sunny/north.1/")
    stranger = entities["homeassistant/binary_sensor/sunny_north_1/stranger/config"]
    assert stranger["off_delay"] == 30 and stranger["availability"][0]["topic"] == "edge-gate/sunny/north.1/available"
    assert "off_delay" not in entities["homeassistant/binary_sensor/sunny_north_1/fire/config"]
    with_button = json.loads(discovery_configs(NAMES, alarm_hold_s=30, button_secret="s" * 16)[button])
    assert with_button["command_topic"] == NAMES.press and with_button["payload_press"] == "s" * 16


def test_states_follow_decisions_and_alarms_without_face_data() -> None:
    decision = {"decision": "grant", "name": "Zhao Lei", "ts": "2026-12-04T08:00:00.000000Z", "direction": "in",
                "event_id": "01J", "person_id": "R010", "scores": {"best": 0.71}, "reasons": [{"code": "resident"}],
                "temperature": {"body_c": 36.64, "valid": True, "raw_c": 34.1}}
    updates = {u.topic: (u.payload, u.retain) for u in state_updates(NAMES, "decision", decision, share_names=True)}
    assert updates[NAMES.decision] == ("grant", True) and updates[NAMES.temperature] == ("36.6", True)
    attributes = json.loads(updates[NAMES.decision_attributes][0])
    assert attributes == {"decision": "grant", "name": "Zhao Lei", "ts": decision["ts"], "direction": "in",
                          "reasons": ["resident"], "event_id": "01J"}
    hidden = state_updates(NAMES, "decision", decision, share_names=False)
    assert "name" not in json.loads(hidden[1].payload)
    invalid = {**decision, "temperature": {"body_c": 36.6, "valid": False}}
    assert NAMES.temperature not in {u.topic for u in state_updates(NAMES, "decision", invalid, share_names=True)}

    def alarm(kind: str) -> list[tuple[str, str, bool]]:
        return [(u.topic, u.payload, u.retain) for u in state_updates(NAMES, "alarm", {"kind": kind}, share_names=True)]
    assert alarm("stranger") == [(NAMES.alarm("stranger"), "ON", False)]  # momentary: HA's off_delay ends it
    assert alarm("fire_release") == [(NAMES.alarm("fire"), "ON", True)]  # held for as long as the release
    assert alarm("fire_release_recovered") == [(NAMES.alarm("fire"), "OFF", True)]
    assert alarm("camera_fault") == []


@pytest.mark.parametrize("kind, payload", [
    ("decision", {}), ("decision", {"decision": "maybe"}), ("decision", {"decision": "deny", "reasons": "x"}),
    ("alarm", {"kind": 7}), ("alarm", {}), ("other", {"decision": "grant"}),
])
def test_bad_input_gives_no_update_and_no_exception(kind: str, payload: dict[str, object]) -> None:
    out = state_updates(NAMES, kind, payload, share_names=True)
    assert out == [] or (payload.get("reasons") == "x" and json.loads(out[1].payload)["reasons"] == [])


def test_the_button_needs_a_secret_by_reference(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="button_enabled needs button_secret"):
        HomeAssistantConfig(enabled=True, button_enabled=True)
    with pytest.raises(ValidationError, match="not the secret"):
        HomeAssistantConfig(enabled=True, button_enabled=True, button_secret="hunter2hunter2hunter2")
    cfg = HomeAssistantConfig(enabled=True, button_enabled=True, button_secret="{cred:ha-button}")
    (tmp_path / "ha-button").write_text("short\n")
    with pytest.raises(SecretError, match="at least 16"):
        cfg.secret({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY"):
        cfg.secret({})
    (tmp_path / "ha-button").write_text("0123456789abcdef0123\n")
    assert cfg.secret({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "0123456789abcdef0123"
    assert HomeAssistantConfig(enabled=True).secret() is None  # off by default: no secret needed
