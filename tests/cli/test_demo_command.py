"""`gate demo` as README command 1 runs it: a subprocess on the demo config (paths moved into tmp, the page
on a free port) prints its decisions and a one-off operator password that signs in to the guards' page."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_gate_demo_prints_decisions_and_serves_the_page(tmp_path: Path) -> None:
    port = _free_port()
    demo = (ROOT / "config" / "demo.toml").read_text()
    demo = demo.replace('"../.demo/data"', f'"{tmp_path / "data"}"')
    demo = demo.replace('"../.demo/scene"', f'"{tmp_path / "scene"}"')
    cfg = tmp_path / "demo.toml"
    cfg.write_text(demo + f"\n[web]\nport = {port}\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--config", str(cfg), "--seconds", "40"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    lines: list[str] = []
    password = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"sign in as demo / (\S+),", line)
            if m:
                password = m.group(1)
            if any(" GRANT " in x for x in lines) and password:
                break
        assert password, "".join(lines)
        assert any(re.search(r"GRANT .*\(R00\d\)", x) for x in lines), "".join(lines)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(150):  # the page comes up beside the lane; allow it a moment
                try:
                    health = client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health.json()["ok"] is True
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            bad = client.post("/login", data={"csrf": csrf.group(1), "name": "demo", "password": "guess"})
            assert bad.status_code in (401, 403), bad.status_code
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            ok = client.post("/login", data={"csrf": csrf.group(1), "name": "demo", "password": password},
                             follow_redirects=False)
            assert ok.status_code == 303, ok.text
            page = client.get("/")
            assert page.status_code == 200 and "demo" in page.text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.returncode


@pytest.mark.slow
def test_run_demo_script_with_mqtt_publishes_to_the_broker(tmp_path: Path) -> None:
    """README command 1 itself (scripts/run-demo) with --mqtt and --admin-pubkey: the gate comes online on the
    broker and its decisions arrive there as events."""
    import json
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.protocol.signing import AdminKey, public_key_text
    from edge.tools.broker import Mosquitto

    demo = (ROOT / "config" / "demo.toml").read_text()
    demo = demo.replace('"../.demo/data"', f'"{tmp_path / "data"}"').replace('"../.demo/scene"',
                                                                             f'"{tmp_path / "scene"}"')
    cfg = tmp_path / "demo.toml"
    cfg.write_text(demo + "\n[web]\nenabled = false\n")
    key = AdminKey.generate()
    (tmp_path / "admin.pub").write_text(public_key_text(key.public))
    got: dict[str, list[bytes]] = {"available": [], "events": []}
    lock = threading.Lock()
    with Mosquitto(tmp_path / "broker") as broker:
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-watch", protocol=mqtt.MQTTv5)

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            with lock:
                got[msg.topic.rsplit("/", 1)[-1]].append(msg.payload)

        sub.on_message = on_message
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe([("edge-gate/demo/demo-gate/available", 1), ("edge-gate/demo/demo-gate/events", 1)])
        sub.loop_start()
        proc = subprocess.Popen([str(ROOT / "scripts" / "run-demo"), "--config", str(cfg), "--seconds", "60",
                                 "--mqtt", broker.url, "--admin-pubkey", str(tmp_path / "admin.pub")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with lock:
                    events = [json.loads(p) for p in got["events"]]
                    online = b"online" in got["available"]
                if online and any(e["decision"] == "grant" for e in events):
                    break
                time.sleep(0.2)
            assert online, got["available"]
            grant = next(e for e in events if e["decision"] == "grant")
            assert grant["schema"] == "edge-gate/event/2" and grant["gate_id"] == "demo-gate"
            assert grant["person_id"] and grant["event_id"]
        finally:
            proc.terminate()
            proc.wait(30)
            sub.loop_stop()
            sub.disconnect()
    assert proc.returncode == 0
