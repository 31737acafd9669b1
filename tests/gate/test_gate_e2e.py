"""End to end: the real `gate run` process on the demo scene, with a relay board simulator running as
its own process on a real pty (as the installer's `gate sim relay` would), and a thermal sensor
simulator on a real pty served by the test. Decisions are checked in the gate's SQLite store.

Nothing here depends on the machine's speed: each run waits for the gate to have started (its models
loaded), then for the decisions it needs (the replay loops, so a visitor missed on a busy machine
comes back), and only then stops the gate. The sensor's fever follows the camera: it is switched on
when the gate has decided about the visitor just before the feverish resident, and off once it has
decided about the next one, whatever the wall clock says."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from support.gate_config import gate_config
from support.gate_process import Decision, GateProcess
from support.paths import REPO
from support.scene import replay_folder
from support.wait import wait_until

from drivers.emulators.thermal import ThermalSim
from edge.config import load_config
from edge.demo_scene import Visit, prepare_demo
from edge.store import Store

FPS = 15
START_S = 300.0  # model load and start-up on a slow, shared machine
DECIDE_S = 300.0  # the replay loops until every visitor of the scene has been decided
RESIDENTS = ("R001", "R002", "R003", "R004", "R005")
RELAY_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*relay 1 (ON|OFF)", re.MULTILINE)


@dataclass
class Env:
    root: Path
    scene: Path
    visits: list[Visit]


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
        wait_until(lambda: link.exists() or proc.poll() is not None, 60, "the relay simulator's pty")
        assert link.exists(), log.read_text()
        yield str(link), log
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


@pytest.fixture()
def thermal_sim(tmp_path: Path) -> Iterator[ThermalSim]:
    """A GY-MCU90614 simulator on a pty served by this process; the test switches its fever."""
    sim = ThermalSim("gy_mcu90614", link=tmp_path / "gate-thermal")
    stop = threading.Event()
    sim.plug()
    server = threading.Thread(target=sim.serve_forever, args=(stop,), name="thermal-sim", daemon=True)
    server.start()
    try:
        yield sim
    finally:
        stop.set()
        server.join(10)
        sim.stop()


def _config(env: Env, tmp: Path, camera: Path, relay_port: str, thermal: str, policy: str = "",
            fail_mode: str = "safe") -> Path:
    return gate_config(tmp, camera, store_from=env.root, gate_id="e2e-gate", community="test", fps=FPS,
                       thermal=thermal, relay=f'type = "lcus"\nport = "{relay_port}"\nfail_mode = "{fail_mode}"',
                       policy=f"anti_passback_s = 60\n{policy}", web_enabled=None)


def _events(data: Path) -> list[dict[str, object]]:
    with Store.open(data / "gate.db") as store:
        return [e.to_dict() for e in store.events(limit=10_000)]


def _relay_switches(log: Path) -> list[tuple[datetime, str]]:
    """The relay board's coil changes with the board simulator's own times (its log)."""
    return [(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f"), state) for t, state in RELAY_LINE.findall(log.read_text())]


def _first_visit(env: Env, tmp: Path) -> Path:
    first = env.visits[0]  # Tom Hanks only, then the empty hallway
    return replay_folder(env.scene, tmp / "scene", list(range(first.last_frame + 3)))


class FeverFollowsVisits:
    """Switches the sensor's fever on when the gate's last decision about a named person is the one about
    `before` (the visitor just ahead of the feverish one), and off when it is about anyone else: the
    feverish visitor is in front of the sensor between those two decisions, however fast frames go."""

    def __init__(self, gate: GateProcess, sim: ThermalSim, before: str) -> None:
        self.gate, self.sim, self.before = gate, sim, before
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fever-switch", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            named = [d.person_id for d in self.gate.parsed_decisions() if d.person_id is not None]
            self.sim.scenario = "fever" if named and named[-1] == self.before else "normal"

    def __enter__(self) -> FeverFollowsVisits:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _everyone_decided(decided: list[Decision]) -> bool:
    named = {d.person_id for d in decided}
    return named >= {*RESIDENTS, "V001"} and sum(d.person_id is None for d in decided) >= 3


@pytest.mark.slow
def test_residents_strangers_fever_and_expired_visitor(env: Env, relay_sim: tuple[str, Path],
                                                       thermal_sim: ThermalSim, tmp_path: Path) -> None:
    port, relay_log = relay_sim
    fever = next(v for v in env.visits if v.fever)
    before_named = next(v for v in reversed(env.visits[:env.visits.index(fever)]) if v.person_id)
    assert before_named.person_id is not None
    thermal = f'type = "gy_mcu90614"\nport = "{thermal_sim.path}"'
    config = _config(env, tmp_path, env.scene, port, thermal)
    data = tmp_path / "data"
    gate = GateProcess(config, tmp_path)
    try:
        gate.wait_started(START_S)
        with FeverFollowsVisits(gate, thermal_sim, before_named.person_id):
            gate.wait_decisions(_everyone_decided, DECIDE_S, "every visitor of the scene to be decided")
    finally:
        rc = gate.stop()
    assert rc == 0, gate.log[-3000:]

    events = _events(data)
    by_person: dict[object, list[dict[str, object]]] = {}
    for e in events:
        by_person.setdefault(e["person_id"], []).append(e)
    codes = {pid: {r["code"] for e in evs for r in e["reasons"]} for pid, evs in by_person.items()}  # type: ignore[attr-defined]
    for pid in ("R001", "R002", "R004", "R005"):  # residents: let in
        assert by_person[pid][0]["decision"] == "grant", (pid, by_person.get(pid))
    assert by_person["R003"][0]["decision"] == "deny" and "fever" in codes["R003"], by_person["R003"][0]
    fever_reason = next(r for r in by_person["R003"][0]["reasons"] if r["code"] == "fever")  # type: ignore[attr-defined]
    assert fever_reason["params"]["confirmed"] is True
    assert by_person["V001"][0]["decision"] == "deny" and "expired" in codes["V001"]
    strangers = [e for e in by_person.get(None, [])]
    assert len(strangers) >= 3 and all(e["decision"] == "deny" for e in strangers)
    assert all(any(a["kind"] == "stranger" for a in e["alarms"]) for e in strangers)  # type: ignore[attr-defined]
    # nobody else was named: no stranger was taken for a resident
    assert set(by_person) <= {*RESIDENTS, "V001", None}
    # every event waits in the outbox for the server, with its alarms
    with Store.open(data / "gate.db") as store:
        assert store.outbox_depth() >= len(events)
        assert store.integrity_check() == "ok"
    # the relay board saw one pulse per grant, and was left released at exit (SIGTERM; fail_mode "safe",
    # the default); the simulator (its own process) logs what it received a moment after the gate sent it
    grants = sum(1 for e in events if e["decision"] == "grant")
    wait_until(lambda: len(_relay_switches(relay_log)) >= 2 * grants + 1, 60, "the board to log every switch")
    switches = [state for _, state in _relay_switches(relay_log)]
    assert switches[:-1].count("ON") == grants >= 4
    assert switches[-1] == "ON"
    latencies = [e["scores"]["latency_ms"] for e in events if e["decision"] == "grant"]  # type: ignore[index]
    assert all(isinstance(v, int | float) and v > 0 for v in latencies)  # measured (not a speed check)
    # `gate events --json`: the same events, one JSON object per line
    listed = subprocess.run([sys.executable, "-m", "edge", "events", "--data-dir", str(data), "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, check=True)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in events]


@pytest.mark.slow
@pytest.mark.parametrize("policy,decision", [("deny", "deny"), ("allow_and_alarm", "grant")])
def test_silent_sensor_is_handled_per_policy(env: Env, relay_sim: tuple[str, Path], tmp_path: Path,
                                            policy: str, decision: str) -> None:
    port, _ = relay_sim
    scene = _first_visit(env, tmp_path)
    silent = tmp_path / "nothing-here"  # a sensor that is not answering: its port does not exist
    config = _config(env, tmp_path, scene, port, f'type = "gy_mcu90614"\nport = "{silent}"',
                     policy=f'sensor_fault_policy = "{policy}"')
    gate = GateProcess(config, tmp_path)
    try:
        gate.wait_started(START_S)
        gate.wait_decisions(lambda ds: any(d.person_id == "R001" for d in ds), DECIDE_S, "R001 to be decided")
    finally:
        rc = gate.stop()
    assert rc == 0, gate.log[-3000:]
    events = [e for e in _events(tmp_path / "data") if e["person_id"] == "R001"]
    assert events and events[0]["decision"] == decision
    assert any(r["code"] == "sensor_fault" for r in events[0]["reasons"])  # type: ignore[attr-defined]
    with Store.open(tmp_path / "data" / "gate.db") as store:
        kinds = {a.kind for a in store.alarms(limit=100)}
    assert "sensor_fault" in kinds


PULSE_MS = 30_000  # the longest pulse the config allows


@pytest.mark.slow
def test_sigterm_while_the_relay_is_on_switches_it_off(env: Env, relay_sim: tuple[str, Path], tmp_path: Path) -> None:
    """systemd stops the gate in the middle of a long pulse: the board must see OFF at once, not when the
    pulse would have ended. Measured on the board simulator's own clock (its log of coil changes)."""
    port, relay_log = relay_sim
    scene = _first_visit(env, tmp_path)  # Tom Hanks, let in
    config = _config(env, tmp_path, scene, port, 'type = "sim"\nkind = "gy_mcu90614"', fail_mode="secure")
    with config.open("a") as f:
        f.write(f"[lane]\nrelay_pulse_ms = {PULSE_MS}\n")
    gate = GateProcess(config, tmp_path)
    try:
        gate.wait_started(START_S)
        wait_until(lambda: "ON" in [s for _, s in _relay_switches(relay_log)] or not gate.alive(), DECIDE_S,
                   "a grant to switch the relay on")
        assert gate.alive(), gate.log[-3000:]
    finally:
        rc = gate.stop()
    assert rc == 0, gate.log[-3000:]
    wait_until(lambda: len(_relay_switches(relay_log)) >= 2, 60, "the board to log the OFF")
    switches = _relay_switches(relay_log)
    assert [s for _, s in switches] == ["ON", "OFF"], switches
    held = (switches[1][0] - switches[0][0]).total_seconds()
    assert held < PULSE_MS / 1000 - 5, f"the relay was held {held:.1f} s: the pulse ran out instead of being cut"
