"""The drivers' commands as an installer runs them: separate processes talking over a real pty."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.cli import main

CLI = [sys.executable, "-m", "drivers.cli"]


def _start_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*CLI, "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    assert ready, "the simulator did not print its path"
    path = proc.stdout.readline().strip()
    assert path, proc.stderr.read() if proc.stderr else ""
    return proc, path


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=10)


@pytest.fixture
def thermal_sim() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, path = _start_sim("thermal", "--pty", "--kind", "gy_mcu90614", "--rate", "40")
    yield proc, path
    if proc.poll() is None:
        _stop(proc)


def test_read_thermal_json_from_sim_process(thermal_sim: tuple[subprocess.Popen[str], str]) -> None:
    proc, path = thermal_sim
    assert os.path.realpath(path).startswith("/dev/pts/")
    out = subprocess.run([*CLI, "drivers", "read-thermal", "--type", "gy_mcu90614", "--port", path,
                          "--count", "3", "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 3
    assert all(34.0 < r["object_c"] < 35.2 and r["ambient_c"] == 24.0 for r in lines)
    assert lines[0]["t"] < lines[1]["t"] < lines[2]["t"]
    assert _stop(proc) == 0  # SIGTERM ends the simulator cleanly


def test_sim_unplug_scenario_serves_behind_a_stable_link() -> None:
    proc, path = _start_sim("relay", "--pty", "--kind", "lcus", "--scenario", "unplug")
    try:
        assert Path(path).is_symlink()
    finally:
        assert _stop(proc) == 0
    assert not Path(path).exists()


def test_read_thermal_missing_port_fails_clearly(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyUSB9")
    out = subprocess.run([*CLI, "drivers", "read-thermal", "--type", "gy_mcu90614", "--port", port,
                          "--timeout", "0.5", "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "no reading" in out.stderr and "ttyUSB9" in out.stderr and out.stdout == ""


def test_pulse_lcus_against_sim_process() -> None:
    proc, path = _start_sim("relay", "--pty", "--kind", "lcus")
    try:
        out = subprocess.run([*CLI, "drivers", "pulse", "--type", "lcus", "--port", path, "--ms", "100"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"pulsed_ms": 100, "state": False, "events": []}
    finally:
        assert _stop(proc) == 0


def test_pulse_modbus_against_sim_process() -> None:
    proc, path = _start_sim("relay", "--pty", "--kind", "modbus")
    try:
        out = subprocess.run([*CLI, "drivers", "pulse", "--type", "modbus_rtu", "--port", path,
                              "--channel", "1",
                              "--ms", "80"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["state"] is False
    finally:
        assert _stop(proc) == 0


def test_pulse_errors_exit_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "pulse", "--type", "lcus", "--port", str(tmp_path / "nope"), "--ms", "50"]) == 1
    assert "relay error" in capsys.readouterr().err
    chip = str(tmp_path / "gpiochip9")
    assert main(["drivers", "pulse", "--type", "gpio", "--port", chip, "--ms", "50"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["drivers", "pulse", "--type", "lcus", "--port", "/dev/null", "--channel", "12"]) == 2
    assert "channel" in capsys.readouterr().err


def test_read_thermal_sim_type_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "read-thermal", "--type", "sim", "--kind", "gy_mcu90640", "--count", "2",
                 "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert len(lines[0]["frame"]) == 24 and len(lines[0]["frame"][0]) == 32


def test_pulse_modbus_switch_failure_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    from drivers.emulators.relay import ModbusSim

    sim = ModbusSim("no_pass")
    sim.start()
    try:
        sim.stuck = True  # acknowledges the write, the coil stays off: the worker's switch-on fails
        assert main(["drivers", "pulse", "--type", "modbus_rtu", "--port", sim.path, "--ms", "50"]) == 1
        assert "reads back 0 after writing 1" in capsys.readouterr().err
    finally:
        sim.stop()


def test_set_baud_switches_a_90640_and_says_what_to_configure(capsys: pytest.CaptureFixture[str]) -> None:
    from drivers.emulators.thermal import ThermalSim

    sim = ThermalSim("gy_mcu90640", rate_hz=20.0)
    sim.start()
    try:
        assert main(["drivers", "set-baud", "--type", "gy_mcu90640", "--port", sim.path, "--to", "460800"]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out) == {"port": sim.path, "baud": 460800, "was": 115200}
        assert "baud = 460800" in out.err and sim.baud == 460800
        # the module is at 460800 now: asking for the old speed finds no frame and says so
        assert main(["drivers", "set-baud", "--type", "gy_mcu90640", "--port", sim.path, "--to", "115200",
                     "--timeout", "0.5"]) == 1
        assert "no frame from" in capsys.readouterr().err and sim.baud == 460800
    finally:
        sim.stop()
