"""The gate with MQTT sync against a real Mosquitto, driven by the admin CLI: events reach the
server, and a signed delta that enrols someone from a photo takes effect while the gate keeps running."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.wait import wait_until

from edge.admin.client import AdminClient
from edge.config import load_config
from edge.demo_scene import STRANGERS, prepare_demo
from edge.gate import Gate
from edge.lane import Outcome
from edge.models import DEFAULT_SAMPLES_DIR
from edge.tools.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]


def gate_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


@pytest.mark.slow
def test_events_flow_out_and_a_signed_delta_enrols_a_new_resident(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        key = tmp_path / "admin.pem"
        made = gate_cli("admin", "keygen", "--out", str(key))
        assert made.returncode == 0, made.stderr
        pubkey = made.stdout.strip()
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
anti_passback_s = 0
[mqtt]
enabled = true
url = "{broker.url}"
admin_public_keys = ["{pubkey}"]
state_interval_s = 1
""")
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
            assert events and events[0]["schema"] == "edge-gate/event/1" and events[0]["gate_id"] == "north-1"

            # the first stranger of the scene becomes a resident, enrolled from a photo by a signed delta
            newcomer = DEFAULT_SAMPLES_DIR / "ctu_unknowns" / STRANGERS[0]
            shutil.copyfile(newcomer, tmp_path / "newcomer.jpg")
            (tmp_path / "delta.csv").write_text("id,name,unit,photo\nR010,Zhao Lei,5-101,newcomer.jpg\n")
            pushed = gate_cli("admin", "push", "--broker", broker.url, "--community", "sunny", "--key", str(key),
                              "--delta", str(tmp_path / "delta.csv"), "--version", "1", "--base-version", "0",
                              "--acks", "1", "--timeout", "30")
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
            assert kept == []
        finally:
            gate.shutdown()
        wait_until(lambda: [p for t, p in watcher.messages if t.endswith("/available")][-1:] == [b"stopped"], 30,
                   "the gate's last word on its availability topic")
        availability = [p for t, p in watcher.messages if t.endswith("/available")]
        assert availability[0] == b"online" and availability[-1] == b"stopped"
        watcher.close()
    finally:
        broker.stop()
