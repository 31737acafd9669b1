"""Home Assistant MQTT discovery of a demo gate against a real Mosquitto: the gate publishes complete
retained discovery configs whose every topic really carries messages, publishes them again on Home
Assistant's birth message, offers no button unless configured, opens the real relay simulator for a
press with the shared secret (an event and an audit row, as the guards' page does), refuses and alarms
a wrong one, and `gate ha purge` empties the configs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gate_helpers import camera_of, demo_root, gate_config
from support.broker import running_broker
from support.wait import wait_until

from edge.admin.client import AdminClient
from edge.config import load_config
from edge.gate import Gate
from edge.store import Store
from edge.sync.ha_bridge import HaBridge
from edge.tools.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
BASE = "edge-gate/demo/south-1"
NODE = "demo_south-1"
SECRET = "9f1c2b7e5a4d3c2b1a0f9e8d"
ATTRIBUTES = {"decision", "name", "ts", "direction", "reasons", "event_id"}  # nothing of the face, no scores


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "ha")


class Listener:
    """A real MQTT client (the admin tools' own) collecting every message on `topics`, retained ones flagged."""

    def __init__(self, broker: Mosquitto, topics: list[str]) -> None:
        self.client = AdminClient(broker.url)
        self.client.subscribe(topics)

    def all(self) -> list[tuple[str, bytes, bool]]:
        flags = self.client.retained_flags()
        return [(t, p, r) for (t, p), r in zip(self.client.messages[:len(flags)], flags, strict=True)]

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.all() if t == topic]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload.encode() if isinstance(payload, str) else payload, retain=retain)

    def close(self) -> None:
        self.client.close()


def retained_configs(broker: Mosquitto) -> dict[str, dict[str, Any]]:
    """What a newcomer (Home Assistant starting) finds retained under homeassistant/#. A sentinel retained
    by the test itself marks the end: the broker sends one subscription's retained messages together."""
    sentinel = "homeassistant/sensor/zz-sentinel/end/config"
    probe = Listener(broker, [sentinel])
    probe.publish(sentinel, "{}", retain=True)
    probe.close()
    newcomer = Listener(broker, ["homeassistant/#"])
    try:
        wait_until(lambda: newcomer.payloads(sentinel), 30, "the retained sentinel")
        return {t: json.loads(p) for t, p, retained in newcomer.all() if retained and p and t != sentinel}
    finally:
        newcomer.close()


def config_text(broker: Mosquitto, extra_ha: str) -> str:
    return (f'[mqtt]\nenabled = true\nurl = "{broker.url}"\nstate_interval_s = 1\n'
            f'[homeassistant]\nenabled = true\n{extra_ha}')


def running(gate: Gate, cond: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Until `cond()`, with the gate's supervisor pass run as `gate run` does."""
    def checked() -> object:
        gate.check()
        return cond()
    wait_until(checked, timeout, what, every=0.05)


def state_topics(config: dict[str, Any]) -> list[str]:
    named = [config[k] for k in ("state_topic", "json_attributes_topic") if k in config]
    return named + [a["topic"] for a in config.get("availability", [])]


@pytest.mark.slow
def test_a_demo_gate_publishes_complete_discovery_configs_and_purge_removes_them(prepared: Path,
                                                                                tmp_path: Path) -> None:
    with running_broker(tmp_path / "broker") as broker:
        cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, "R001"),
                                      extra=config_text(broker, "")))
        watch = Listener(broker, ["homeassistant/#", f"{BASE}/#"])
        gate = Gate(cfg)
        gate.start()
        try:
            assert gate.sync is not None and isinstance(gate.sync.ha, HaBridge)
            configs: dict[str, dict[str, Any]] = {}

            def complete() -> bool:
                configs.clear()
                configs.update({t: json.loads(p) for t, p, _ in watch.all()
                                if t.startswith("homeassistant/") and t.endswith("/config") and p})
                return len(configs) >= 8 and all(watch.payloads(t) for c in configs.values()
                                                 for t in state_topics(c))
            # the resident walks up: a decision with a temperature fills the last ha/... topics
            running(gate, complete, "discovery configs whose every topic carries a message")
            assert len(configs) == 8 and f"homeassistant/button/{NODE}/open/config" not in configs  # no button
            ids = [c["unique_id"] for c in configs.values()]
            assert len(set(ids)) == len(ids)
            for topic, c in configs.items():
                assert topic.startswith("homeassistant/") and topic.split("/")[2] == NODE
                assert c["device"]["identifiers"] == [f"edge-gate_{NODE}"]
                assert {"name", "manufacturer", "model", "sw_version"} <= set(c["device"])
                assert all(t.startswith(f"{BASE}/") for t in state_topics(c)), c
            temp = configs[f"homeassistant/sensor/{NODE}/body_temperature/config"]
            assert temp["device_class"] == "temperature" and temp["unit_of_measurement"] == "°C"
            assert 30.0 < float(watch.payloads(temp["state_topic"])[-1]) < 43.0
            decision = configs[f"homeassistant/sensor/{NODE}/last_decision/config"]
            assert watch.payloads(decision["state_topic"])[-1] in (b"grant", b"deny")
            attributes = json.loads(watch.payloads(decision["json_attributes_topic"])[-1])
            assert set(attributes) == ATTRIBUTES and attributes["decision"] in ("grant", "deny")
            assert watch.payloads(f"{BASE}/ha/alarm/fire")[-1] == b"OFF"
            assert watch.payloads(f"{BASE}/available")[-1] == b"online"
            found = retained_configs(broker)  # what Home Assistant finds when it starts
            assert set(found) == set(configs)

            # Home Assistant (re)starts: its birth message makes the gate publish again; junk first does nothing
            online_topic = f"homeassistant/binary_sensor/{NODE}/online/config"
            before = len(watch.payloads(online_topic))
            watch.publish("homeassistant/status", b"\xff\xfe not a status")
            watch.publish("homeassistant/status", "online")
            running(gate, lambda: len(watch.payloads(online_topic)) > before, "the configs again after HA's birth")
            assert gate.sync.ha.republished >= 2 and gate.sync.running
        finally:
            gate.shutdown()
            watch.close()

        purged = subprocess.run([sys.executable, "-m", "edge", "ha", "purge", "--config",
                                 str(tmp_path / "gate.toml")], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert purged.returncode == 0, purged.stderr
        assert "removed 9 discovery configs" in purged.stdout
        assert retained_configs(broker) == {}  # every entity of the gate disappears


@pytest.mark.slow
def test_the_open_button_needs_its_secret(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "ha-button").write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with running_broker(tmp_path / "broker") as broker:
        button = 'button_enabled = true\nbutton_secret = "{cred:ha-button}"\nbutton_min_interval_s = 1\n'
        cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, None),  # nobody walks up
                                      extra=config_text(broker, button)))
        watch = Listener(broker, ["homeassistant/#", f"{BASE}/#"])
        gate = Gate(cfg)
        gate.start()
        try:
            assert gate.sync is not None and isinstance(gate.sync.ha, HaBridge)
            bridge = gate.sync.ha
            topic = f"homeassistant/button/{NODE}/open/config"
            running(gate, lambda: watch.payloads(topic) and gate.sync is not None and gate.sync.wait_connected(0),
                    "the button's config and the gate's subscriptions")
            config = json.loads(watch.payloads(topic)[-1])
            assert config["command_topic"] == f"{BASE}/ha/open/press" and config["payload_press"] == SECRET
            assert config["unique_id"] == f"edge-gate_{NODE}_open" and config["device"]["identifiers"]
            sim = gate.relay.sim  # type: ignore[attr-defined]
            press = config["command_topic"]

            watch.publish(press, "not-the-secret-at-all")

            def refused_alarms() -> list[dict[str, Any]]:
                alarms = map(json.loads, watch.payloads(f"{BASE}/alarms"))
                return [a for a in alarms if a["kind"] == "ha_button_refused"]
            running(gate, refused_alarms, "the refused press's alarm")
            assert refused_alarms()[0]["details"]["reason"] == "wrong_secret"
            assert bridge.presses["refused"] == 1 and bridge.presses["opened"] == 0
            assert not sim.log.changes and gate.relay.stats.pulses == 0  # the relay never moved

            time.sleep(cfg.homeassistant.button_min_interval_s)  # the configured rate limit, not a speed
            watch.publish(press, SECRET)
            watch.publish(press, SECRET)  # a second press within the interval is dropped
            running(gate, lambda: any(c.on for c in sim.log.changes) and bridge.presses["dropped"] == 1,
                    "the relay simulator's coil switched on for the press")
            assert bridge.presses["opened"] == 1 and gate.relay.stats.pulses == 1

            def opened_event() -> list[dict[str, Any]]:
                return [e for e in map(json.loads, watch.payloads(f"{BASE}/events"))
                        if (e.get("scores") or {}).get("guard") == "homeassistant"]
            running(gate, opened_event, "the manual-open event on the events topic")
            event = opened_event()[0]
            assert event["decision"] == "grant" and event["reasons"][0]["code"] == "manual_open"

            time.sleep(cfg.homeassistant.button_min_interval_s)
            watch.publish(press, b"\xff\xfe\xfd")  # not even text: refused, the gate goes on
            running(gate, lambda: bridge.presses["refused"] == 2, "the malformed press refused")
            assert gate.relay.stats.pulses == 1 and gate.sync.running
        finally:
            gate.shutdown()
            watch.close()
        with Store.open(cfg.gate.data_dir / "gate.db") as store:
            audit = [a for a in store.audit_entries() if a.action == "manual_open"]
        assert [a.actor for a in audit] == ["homeassistant"]
