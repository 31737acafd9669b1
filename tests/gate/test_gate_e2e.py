"""End to end: the real `gate run` process on the demo scene, with a relay board simulator running as
its own process on a real pty (as the installer's `gate sim relay` would), and a simulated thermal
sensor on a pty inside the gate. Decisions are checked in the gate's SQLite store afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.config import load_config
from edge.demo_scene import Visit, prepare_demo
from edge.store import Store

REPO = Path(__file__).resolve().parents[2]
FPS = 15


@dataclass
class Env:
    root: Path
    scene: Path
    visits: list[Visit]


def _write_config(data: Path, scene: Path, relay_port: str, thermal: str, policy: str = "") -> Path:
    path = data.parent / "gate.toml"
    path.write_text(f"""
[gate]
id = "e2e-gate"
community = "test"
data_dir = "{data}"

[camera]
type = "folder"
source = "{scene}"
fps = {FPS}

{thermal}

[relay]
type = "lcus"
port = "{relay_port}"

[policy]
anti_passback_s = 60
{policy}
""")
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("e2e")
    (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    cfg = load_config(root / "base.toml")
    visits = prepare_demo(cfg, root / "scene")
    return Env(root, root / "scene", visits)


@pytest.fixture()
def relay_sim(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    link = tmp_path / "gate-relay"
    log = tmp_path / "relay-sim.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edge", "sim", "relay", "--pty", "--kind", "lcus",
                                 "--link", str(link)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.exists(), log.read_text()
        yield str(link), log
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def _run_gate(config: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)  # what systemd sends
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _events(data: Path) -> list[dict[str, object]]:
    with Store.open(data / "gate.db") as store:
        return [e.to_dict() for e in store.events(limit=10_000)]


def _fresh_data(env: Env, tmp_path: Path) -> Path:
    """A copy of the enrolled store for one test (the residents, the visitor; no events yet)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(env.root / "data" / "gate.db", data / "gate.db")
    return data


@pytest.mark.slow
def test_residents_strangers_fever_and_expired_visitor(env: Env, relay_sim: tuple[str, Path], tmp_path: Path) -> None:
    data = _fresh_data(env, tmp_path)
    port, relay_log = relay_sim
    frames = max(v.last_frame for v in env.visits) + 5
    fever = next(v for v in env.visits if v.fever)
    thermal = (f'[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n'
               f"fever_windows = [[{(fever.first_frame - 2) / FPS:.2f}, {(fever.last_frame + 3) / FPS:.2f}]]\n")
    config = _write_config(data, env.scene, port, thermal)
    result = _run_gate(config, seconds=frames / FPS + 4.0)
    assert result.returncode == 0, result.stderr[-3000:]

    events = _events(data)
    by_person: dict[object, list[dict[str, object]]] = {}
    for e in events:
        by_person.setdefault(e["person_id"], []).append(e)
    codes = {pid: {r["code"] for e in evs for r in e["reasons"]} for pid, evs in by_person.items()}  # type: ignore[attr-defined]
    for pid in ("R001", "R002", "R004", "R005"):  # residents: let in
        assert by_person[pid][0]["decision"] == "grant", (pid, by_person.get(pid))
    assert by_person["R003"][0]["decision"] == "deny" and "fever" in codes["R003"]
    fever_reason = next(r for r in by_person["R003"][0]["reasons"] if r["code"] == "fever")  # type: ignore[attr-defined]
    assert fever_reason["params"]["confirmed"] is True
    assert by_person["V001"][0]["decision"] == "deny" and "expired" in codes["V001"]
    strangers = [e for e in by_person.get(None, [])]
    assert len(strangers) >= 3 and all(e["decision"] == "deny" for e in strangers)
    assert all(any(a["kind"] == "stranger" for a in e["alarms"]) for e in strangers)  # type: ignore[attr-defined]
    # nobody else was named: no stranger was taken for a resident
    assert set(by_person) <= {"R001", "R002", "R003", "R004", "R005", "V001", None}
    # every event waits in the outbox for the server, with its alarms
    with Store.open(data / "gate.db") as store:
        assert store.outbox_depth() >= len(events)
        assert store.integrity_check() == "ok"
    # the relay board saw one pulse per grant, and was switched off at exit (SIGTERM)
    switches = re.findall(r"relay 1 (ON|OFF)", relay_log.read_text())
    grants = sum(1 for e in events if e["decision"] == "grant")
    assert switches.count("ON") == grants >= 4
    assert switches[-1] == "OFF"
    latencies = [e["scores"]["latency_ms"] for e in events if e["decision"] == "grant"]  # type: ignore[index]
    assert max(latencies) < 1000
    # `gate events --json`: the same events, one JSON object per line
    listed = subprocess.run([sys.executable, "-m", "edge", "events", "--data-dir", str(data), "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=True)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in events]


@pytest.mark.slow
@pytest.mark.parametrize("policy,decision", [("deny", "deny"), ("allow_and_alarm", "grant")])
def test_silent_sensor_is_handled_per_policy(env: Env, relay_sim: tuple[str, Path], tmp_path: Path,
                                            policy: str, decision: str) -> None:
    data = _fresh_data(env, tmp_path)
    port, _ = relay_sim
    first = env.visits[0]  # Tom Hanks only
    scene = tmp_path / "scene"
    scene.mkdir()
    for i in range(first.last_frame + 3):
        os.symlink(env.scene / f"{i:04d}.jpg", scene / f"{i:04d}.jpg")
    silent = tmp_path / "nothing-here"  # a sensor that is not answering: its port does not exist
    thermal = f'[thermal]\ntype = "gy_mcu90614"\nport = "{silent}"\n'
    config = _write_config(data, scene, port, thermal,
                           policy=f'sensor_fault_policy = "{policy}"')
    result = _run_gate(config, seconds=(first.last_frame + 3) / FPS + 4.0)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [e for e in _events(data) if e["person_id"] == "R001"]
    assert events and events[0]["decision"] == decision
    assert any(r["code"] == "sensor_fault" for r in events[0]["reasons"])  # type: ignore[attr-defined]
    with Store.open(data / "gate.db") as store:
        kinds = {a.kind for a in store.alarms(limit=100)}
    assert "sensor_fault" in kinds


@pytest.mark.slow
def test_sigterm_while_the_relay_is_on_switches_it_off(env: Env, relay_sim: tuple[str, Path], tmp_path: Path) -> None:
    """systemd stops the gate in the middle of a 20 s pulse: the board must see OFF at once, not when the
    pulse would have ended (it only logs changes, so the OFF after the signal is the shutdown's)."""
    data = _fresh_data(env, tmp_path)
    port, relay_log = relay_sim
    first = env.visits[0]  # Tom Hanks, let in
    scene = tmp_path / "scene"
    scene.mkdir()
    for i in range(first.last_frame + 3):
        os.symlink(env.scene / f"{i:04d}.jpg", scene / f"{i:04d}.jpg")
    thermal = '[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n\n[lane]\nrelay_pulse_ms = 20000\n'
    config = _write_config(data, scene, port, thermal)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while "relay 1 ON" not in relay_log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, "no grant switched the relay on"
            time.sleep(0.05)
        on_at = time.monotonic()
        time.sleep(0.5)
        assert re.findall(r"relay 1 (ON|OFF)", relay_log.read_text()) == ["ON"]  # on, mid-pulse
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stopped_after = time.monotonic() - on_at
    assert proc.returncode == 0, err[-3000:]
    deadline = time.monotonic() + 3  # the simulator (its own process) logs what it received a moment later
    while "relay 1 OFF" not in relay_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    switches = re.findall(r"relay 1 (ON|OFF)", relay_log.read_text())
    assert switches == ["ON", "OFF"], switches
    assert stopped_after < 15, f"the gate took {stopped_after:.1f} s to stop: the pulse may have ended by itself"
