"""The gate with MQTT sync against a real Mosquitto, driven by the admin CLI: events reach the
server, and a signed delta that enrols someone from a photo takes effect while the gate keeps running."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.wait import wait_until

from edge.admin.client import AdminClient
from edge.config import load_config
from edge.demo_scene import STRANGERS, prepare_demo
from edge.gate import Gate
from edge.lane import Outcome
from edge.models import DEFAULT_SAMPLES_DIR
from edge.protocol.signing import SigningKey, verify
from edge.tools.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]


def gate_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def _demo_gate_config(tmp_path: Path, broker: Mosquitto, key: Path, *, anti_passback_s: float,
                      extra: str = "") -> None:
    """An admin key at `key`, the demo scene, and gate.toml: gate north-1 of community sunny on `broker`."""
    made = gate_cli("admin", "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    (tmp_path / "base.toml").write_text(f'[gate]\ndata_dir = "{tmp_path / "data"}"\n')
    prepare_demo(load_config(tmp_path / "base.toml"), tmp_path / "scene")
    (tmp_path / "gate.toml").write_text(f"""
[gate]
id = "north-1"
community = "sunny"
data_dir = "{tmp_path / 'data'}"
[camera]
type = "folder"
source = "{tmp_path / 'scene'}"
fps = 20
[thermal]
type = "sim"
kind = "gy_mcu90614"
[relay]
type = "sim"
kind = "lcus"
[policy]
anti_passback_s = {anti_passback_s}
[mqtt]
enabled = true
url = "{broker.url}"
admin_public_keys = ["{made.stdout.strip()}"]
{extra}""")


@pytest.mark.slow
def test_events_flow_out_and_a_signed_delta_enrols_a_new_resident(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        key = tmp_path / "admin.pem"
        _demo_gate_config(tmp_path, broker, key, anti_passback_s=0, extra="state_interval_s = 1\n")
        watcher = AdminClient(broker.url)
        watcher.subscribe(["edge-gate/sunny/+/events", "edge-gate/sunny/north-1/available"])
        outcomes: list[Outcome] = []
        gate = Gate(load_config(tmp_path / "gate.toml"), on_outcome=outcomes.append)
        gate.start()
        try:
            assert gate.sync is not None and gate.sync.wait_connected(10)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(t.endswith("/events") for t, _ in watcher.messages):
                gate.check()
                time.sleep(0.2)
            events = [json.loads(p) for t, p in watcher.messages if t.endswith("/events")]
            assert events and events[0]["schema"] == "edge-gate/event/2" and events[0]["gate_id"] == "north-1"
            gate_key = gate.sync.key
            assert verify(events[0], [gate_key.public]) == gate_key.key_id  # signed by the gate's own key
            shown = gate_cli("keys", "show", "--json", "--config", str(tmp_path / "gate.toml"))
            assert json.loads(shown.stdout)["public_key"] == gate_key.public_text, shown.stderr
            (tmp_path / "gates.json").write_text(json.dumps({"gates": [
                {k: v for k, v in json.loads(shown.stdout).items() if k in ("gate_id", "public_key")}]}))

            # the first stranger of the scene becomes a resident, enrolled from a photo by a signed delta
            newcomer = DEFAULT_SAMPLES_DIR / "ctu_unknowns" / STRANGERS[0]
            shutil.copyfile(newcomer, tmp_path / "newcomer.jpg")
            (tmp_path / "delta.csv").write_text("id,name,unit,photo\nR010,Zhao Lei,5-101,newcomer.jpg\n")
            pushed = gate_cli("admin", "push", "--broker", broker.url, "--community", "sunny", "--key", str(key),
                              "--delta", str(tmp_path / "delta.csv"), "--version", "1", "--base-version", "0",
                              "--acks", "1", "--gates", str(tmp_path / "gates.json"), "--timeout", "30")
            assert pushed.returncode == 0, pushed.stdout + pushed.stderr
            ack = json.loads(pushed.stdout.splitlines()[0])
            assert ack["status"] == "applied" and ack["counts"]["upserted"] == 1 and ack["gate"] == "north-1"
            assert "R010" in gate.lane.whitelist.persons  # swapped in without a restart

            deadline = time.monotonic() + 30  # the scene loops: the newcomer walks up again
            while time.monotonic() < deadline and not any(o.event.person_id == "R010" for o in outcomes):
                gate.check()
                time.sleep(0.2)
            granted = [o for o in outcomes if o.event.person_id == "R010"]
            assert granted and granted[0].event.decision == "grant"
            # the photo was not kept (keep_photos is off): the data dir holds only the SQLite store
            kept = [p.name for p in (tmp_path / "data").rglob("*") if not p.name.startswith("gate.db")]
            assert kept == ["gate-key.pem"]  # and the gate's own key, made at its first start
            assert (tmp_path / "data" / "gate-key.pem").stat().st_mode & 0o777 == 0o600
        finally:
            gate.shutdown()
        wait_until(lambda: [p for t, p in watcher.messages if t.endswith("/available")][-1:] == [b"stopped"], 30,
                   "the gate's last word on its availability topic")
        availability = [p for t, p in watcher.messages if t.endswith("/available")]
        assert availability[0] == b"online" and availability[-1] == b"stopped"
        watcher.close()
    finally:
        broker.stop()


def _forged_event(person: str, gate: str, ts: str) -> dict[str, object]:
    return {"schema": "edge-gate/event/2", "event_id": f"01FORGED{time.time_ns() % 10**18:018d}", "ts": ts,
            "gate_id": gate, "direction": "in", "person_id": person, "decision": "grant",
            "reasons": [{"code": "ok", "effect": "allow", "params": {}}], "alarms": [], "temperature": None,
            "scores": None}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.slow
def test_forged_peer_events_change_no_decision_and_raise_one_alarm(tmp_path: Path) -> None:
    """The attack of issue 14 against the demo gate on a real broker: grants forged for a resident
    (anti-passback), for a visitor's pass (uses) and dated 2099 (care watch), from a made-up gate, with
    made-up keys, and from a listed gate with the wrong key. Nothing changes; one forged_message alarm;
    a correctly signed event of a listed gate still counts."""
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    stop = threading.Event()
    try:
        key = tmp_path / "admin.pem"
        _demo_gate_config(tmp_path, broker, key, anti_passback_s=5)
        outcomes: list[Outcome] = []
        gate = Gate(load_config(tmp_path / "gate.toml"), on_outcome=outcomes.append)
        south, impostor = SigningKey.generate(), SigningKey.generate()
        assert gate.sync is not None
        (tmp_path / "gates.json").write_text(json.dumps({"gates": [
            {"gate_id": "north-1", "public_key": gate.sync.key.public_text},
            {"gate_id": "south-2", "public_key": south.public_text}]}))
        (tmp_path / "visitor.json").write_text(json.dumps({"persons": [{
            "id": "V100", "name": "Courier", "kind": "visitor", "max_uses": 3, "model_id": "sface_2021dec",
            "embeddings": [[1.0] + [0.0] * 127]}]}))
        gate.start()
        try:
            assert gate.sync.wait_connected(30)
            pushed = gate_cli("admin", "push", "--broker", broker.url, "--community", "sunny", "--key", str(key),
                              "--delta", str(tmp_path / "visitor.json"), "--version", "1", "--base-version", "0",
                              "--gates", str(tmp_path / "gates.json"), "--send-gates", "--acks", "1",
                              "--timeout", "30")
            assert pushed.returncode == 0, pushed.stdout + pushed.stderr
            forger = AdminClient(broker.url)
            evil, south_topic = "edge-gate/sunny/gate-evil/events", "edge-gate/sunny/south-2/events"
            forger.publish(south_topic, json.dumps(south.sign(_forged_event("R002", "south-2", _now()))).encode())

            def forge() -> None:
                while not stop.is_set():
                    for person in ("R001", "V100"):
                        ev = _forged_event(person, "gate-evil", _now())
                        forger.publish(evil, json.dumps(ev).encode())  # unsigned
                        forger.publish(evil, json.dumps(impostor.sign(ev)).encode())  # a made-up key
                        forger.publish(south_topic, json.dumps(impostor.sign({**ev, "gate_id": "south-2"})).encode())
                    future = _forged_event("R001", "south-2", "2099-01-01T00:00:00.000000Z")
                    forger.publish(south_topic, json.dumps(south.sign(future)).encode())  # listed, but 2099
                    stop.wait(0.5)

            thread = threading.Thread(target=forge, daemon=True)
            thread.start()
            started = len(outcomes)

            def r001_after() -> list[Outcome]:
                return [o for o in outcomes[started:] if o.event.person_id == "R001"]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and (len(r001_after()) < 2 or gate.sync.health()["peer_rejected"] < 20):
                gate.check()
                time.sleep(0.2)
            stop.set()
            thread.join(10)
            forger.close()
            decisions = [(o.event.decision, [r["code"] for r in o.event.reasons]) for o in r001_after()]
            assert len(decisions) >= 2 and all(d == ("grant", ["ok"]) for d in decisions), decisions
            health = gate.sync.health()
            assert health["peer_rejected"] >= 20 and health["peer_events"] == 1
            wait_until(lambda: gate.store.recent_passages(None, datetime(2000, 1, 1, tzinfo=UTC)), 10, "passages")
            passages = gate.store.recent_passages(None, datetime(2000, 1, 1, tzinfo=UTC))
            assert {p.gate_id for p in passages} <= {"north-1", "south-2"}
            assert [(p.person_id, p.gate_id) for p in passages if p.gate_id != "north-1"] == [("R002", "south-2")]
            assert all(p.ts.year < 2099 for p in passages)  # the care watch is not silenced by a passage from 2099
            visitor = gate.store.get_person("V100")
            assert visitor is not None and visitor.uses == 0  # the pass is not used up
            forged = [a for a in gate.store.alarms(limit=1000) if a.kind == "forged_message"]
            assert len(forged) == 1 and forged[0].details["dropped_since_last"] == 1, forged
        finally:
            stop.set()
            gate.shutdown()
    finally:
        broker.stop()
