"""`gate calibrate thermal` as an installer runs it: a subprocess against the thermal simulators on real
ptys whose error is known (the spot sensor's offset and ambient slope, the array's thermal-to-camera
map). The fit must recover it, be written to the config file (the rest of the file kept), and be used
by the temperature estimate; the self-test warns until then; bad input gives one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.gate_config import gate_config
from support.paths import REPO

from drivers.emulators.thermal import Scene, ThermalSim
from drivers.thermal import Reading
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from edge.config import load_config
from edge.config.calibration_file import BEGIN
from edge.selftest import check_calibration
from edge.temperature import estimate_spot, map_points

# The simulated spot sensor reads this much too high at 24 C room, and this much more per degree warmer.
ERROR_OFFSET_C = 0.8
ERROR_SLOPE = 0.05
# (room temperature, blackbody set point) of each calibration point
SPOT_POINTS = [(18.0, 35.0), (24.0, 37.0), (30.0, 33.0), (27.0, 39.0), (20.5, 36.0)]
OFFSET_TOLERANCE_C = 0.05
SLOPE_TOLERANCE = 0.006
# The array's true map camera (x, y, 1) -> thermal (col, row), and the camera positions of the target.
TRUE_AFFINE = [[0.048, 0.004, 0.9], [-0.003, 0.051, -0.6]]
TARGET_POSITIONS = [(120, 100), (520, 120), (540, 380), (100, 400), (320, 240), (230, 320)]
MAP_TOLERANCE_PX = 0.3  # thermal pixels, anywhere in a 640x480 camera image


def _gate(*argv: str | Path | float, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *map(str, argv)], capture_output=True, text=True,
                          timeout=180, cwd=REPO, input=stdin if stdin is not None else "")


def _one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], proc.stderr


@pytest.fixture
def spot_sim() -> Iterator[ThermalSim]:
    sim = ThermalSim("gy_mcu90614", seed=3, scene=Scene(error_offset_c=ERROR_OFFSET_C, error_ambient_slope=ERROR_SLOPE))
    sim.start()
    yield sim
    sim.stop()


def _spot_config(tmp_path: Path, port: str) -> Path:
    thermal = f'type = "gy_mcu90614"\nport = "{port}"\nmode = "query"\nquery_interval_s = 0.02'
    notes = "# the installer's own notes stay where they are\n[temperature]\nspot_offset_c = 2.3\n"
    path: Path = gate_config(tmp_path, tmp_path / "frames", thermal=thermal, extra=notes)
    return path


def _face_estimate(sim: ThermalSim, cfg_path: Path, ambient_c: float) -> float:
    """The body-temperature estimate of the simulated face (the forehead, no reference target), as the
    gate computes it from a live reading of the real driver with the config file's temperature section."""
    sim.scene.target_c, sim.scene.ambient_c = None, ambient_c
    sensor = GyMcu90614(GyMcu90614Config(port=sim.path, mode="query", query_interval_s=0.02))
    sensor.start()
    try:
        readings: list[Reading] = []
        last = 0.0
        while len(readings) < 10:
            r = sensor.wait(30.0, newer_than=last)
            assert r is not None, sensor.stats
            readings.append(r)
            last = r.t
    finally:
        sensor.close()
    cfg = load_config(cfg_path).temperature
    return float(np.mean([estimate_spot(r.object_c, r.ambient_c, None, cfg).body_c for r in readings]))


def test_spot_fit_recovers_the_sensor_error_and_the_gate_uses_it(tmp_path: Path, spot_sim: ThermalSim) -> None:
    cfg = _spot_config(tmp_path, spot_sim.path)
    original = cfg.read_text(encoding="utf-8")
    warning = check_calibration(load_config(cfg))
    assert warning.ok and warning.warning and "never calibrated" in warning.detail
    assert "gate calibrate thermal" in warning.detail
    before = _face_estimate(spot_sim, cfg, 20.0)

    points = tmp_path / "points.csv"
    for ambient, set_point in SPOT_POINTS:
        spot_sim.scene.ambient_c, spot_sim.scene.target_c = ambient, set_point
        proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", points, "--measure", set_point,
                     "--samples", 10)
        assert proc.returncode == 0, proc.stderr
    assert len(points.read_text().splitlines()) == 1 + len(SPOT_POINTS)

    proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", points)
    assert proc.returncode == 0, proc.stderr
    assert "residual: max" in proc.stdout and "wrote [temperature.calibration]" in proc.stdout
    cal = load_config(cfg).temperature.calibration
    assert cal.sensor_offset_c is not None and cal.sensor_ambient_coefficient is not None
    # the correction is the error's opposite: -offset at 24 C, +slope per degree the room is colder
    assert abs(cal.sensor_offset_c + ERROR_OFFSET_C) <= OFFSET_TOLERANCE_C, cal
    assert abs(cal.sensor_ambient_coefficient - ERROR_SLOPE) <= SLOPE_TOLERANCE, cal
    assert cal.spot_points == len(SPOT_POINTS) and cal.spot_reference == "blackbody"
    assert cal.spot_residual_max_c is not None and cal.spot_residual_max_c < 0.1
    assert cal.spot_calibrated_at is not None
    # the rest of the file is kept as it was, the table is appended once
    text = cfg.read_text(encoding="utf-8")
    assert text.startswith(original.rstrip("\n")) and text.count(BEGIN) == 1

    after = _face_estimate(spot_sim, cfg, 20.0)
    error_at_20 = ERROR_OFFSET_C + ERROR_SLOPE * (20.0 - 24.0)
    assert abs((after - before) + error_at_20) <= 0.06, (before, after)
    assert abs(after - (34.6 + 2.3 + 0.1 * 4.0)) <= 0.06, after  # what a perfect sensor gives
    done = check_calibration(load_config(cfg))
    assert done.ok and not done.warning and "calibrated" in done.detail

    # calibrating again replaces the table; a thermometer reference is recorded as such
    proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", points, "--reference-kind", "thermometer")
    assert proc.returncode == 0, proc.stderr
    assert cfg.read_text(encoding="utf-8").count(BEGIN) == 1
    assert load_config(cfg).temperature.calibration.spot_reference == "thermometer"


def test_selftest_warns_until_calibrated(tmp_path: Path, spot_sim: ThermalSim) -> None:
    cfg = _spot_config(tmp_path, spot_sim.path)
    proc = _gate("selftest", "-c", cfg, "--json", "--timeout", 10)
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "calibration")
    assert check["ok"] and check["warning"] and "never calibrated" in check["detail"], check
    points = tmp_path / "points.csv"
    points.write_text("reference_c,sensor_c,ambient_c\n35.0,35.8,24.0\n37.0,37.79,24.0\n33.0,33.81,24.0\n")
    assert _gate("calibrate", "thermal", "-c", cfg, "--reference", points).returncode == 0
    proc = _gate("selftest", "-c", cfg, "--json", "--timeout", 10)
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "calibration")
    assert check["ok"] and not check["warning"] and "3 points" in check["detail"], check


def _camera_image(folder: Path, x: float, y: float) -> None:
    image = np.full((480, 640, 3), 40, np.uint8)
    cv2.circle(image, (int(x), int(y)), 7, (250, 250, 250), -1)
    folder.mkdir(exist_ok=True)
    assert cv2.imwrite(str(folder / "target.png"), image)


def test_array_fit_recovers_the_affine_map(tmp_path: Path) -> None:
    sim = ThermalSim("gy_mcu90640", seed=5, scene=Scene(face_present=False, warm_target_sigma_px=1.5))
    sim.start()
    try:
        frames = tmp_path / "frames"
        _camera_image(frames, 320, 240)
        thermal = f'type = "gy_mcu90640"\nport = "{sim.path}"\nmode = "query"\nquery_interval_s = 0.05'
        cfg = gate_config(tmp_path, frames, thermal=thermal, fps=30)
        assert check_calibration(load_config(cfg)).warning
        points = tmp_path / "targets.csv"
        for x, y in TARGET_POSITIONS:
            col, row = map_points([[x, y]], TRUE_AFFINE)[0]
            sim.scene.warm_target = (float(col), float(row))
            _camera_image(frames, x, y)
            proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", points, "--measure-target", "--samples", 3)
            assert proc.returncode == 0, proc.stderr
        proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", points)
        assert proc.returncode == 0, proc.stderr
        assert "px" in proc.stdout
    finally:
        sim.stop()
    temp = load_config(cfg).temperature
    assert temp.calibration.thermal_affine is not None and temp.affine() == temp.calibration.thermal_affine
    corners = [[0, 0], [639, 0], [0, 479], [639, 479], [320, 240]]
    worst = float(np.abs(map_points(corners, temp.affine()) - map_points(corners, TRUE_AFFINE)).max())
    assert worst <= MAP_TOLERANCE_PX, (worst, temp.affine())
    assert temp.calibration.affine_residual_max_px is not None and temp.calibration.affine_residual_max_px < 0.5
    assert not check_calibration(load_config(cfg)).warning


@pytest.mark.parametrize(("rows", "expect"), [
    ("reference_c,sensor_c,ambient_c\n35.0,35.8,24.0\n", "too few"),
    ("reference_c,sensor_c,ambient_c\n35.0,35.8,24.0\n37.0,abc,24.0\n33.0,33.8,24.0\n",
     "'abc' in sensor_c is not a number"),
    ("reference,sensor\n35.0,35.8\n", "must name the columns reference_c, sensor_c, ambient_c"),
    ("reference_c,sensor_c,ambient_c\n35.0,35.8,24.0\n37.0,38.9,24.0\n33.0,33.8,24.0\n", "above the limit"),
])
def test_bad_points_file_one_line_and_config_unchanged(tmp_path: Path, rows: str, expect: str) -> None:
    cfg = _spot_config(tmp_path, str(tmp_path / "ttyUSB7"))
    original = cfg.read_text(encoding="utf-8")
    points = tmp_path / "points.csv"
    points.write_text(rows)
    _one_line_error(_gate("calibrate", "thermal", "-c", cfg, "--reference", points), expect)
    assert cfg.read_text(encoding="utf-8") == original


def test_missing_sensor_one_line(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB7"
    cfg = _spot_config(tmp_path, str(port))
    proc = _gate("calibrate", "thermal", "-c", cfg, "--reference", tmp_path / "p.csv", "--measure", 35,
                 "--timeout", 1, "--samples", 2)
    _one_line_error(proc, f"no reading from the gy_mcu90614 sensor on {port}")
    assert not (tmp_path / "p.csv").exists()


def test_missing_config_and_wrong_mode_one_line(tmp_path: Path) -> None:
    _one_line_error(_gate("calibrate", "thermal", "--reference", "p.csv"), "--config FILE")
    cfg = _spot_config(tmp_path, str(tmp_path / "ttyUSB7"))
    _one_line_error(_gate("calibrate", "thermal", "-c", cfg, "--reference", tmp_path / "p.csv", "--measure-target"),
                    "--measure-target is for the 32x24 array")
    _one_line_error(_gate("calibrate", "thermal", "-c", tmp_path / "none.toml", "--reference", "p.csv"),
                    "cannot read")


def test_interactive_with_no_points_refuses(tmp_path: Path) -> None:
    """Prompts on stdin: an empty answer fits what was measured, here nothing: refused, nothing written."""
    cfg = _spot_config(tmp_path, str(tmp_path / "ttyUSB7"))
    original = cfg.read_text(encoding="utf-8")
    proc = _gate("calibrate", "thermal", "-c", cfg, stdin="\n")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 0 point(s) is too few")
    assert cfg.read_text(encoding="utf-8") == original


def test_interactive_points_measured_live_are_fitted_and_written(tmp_path: Path, spot_sim: ThermalSim) -> None:
    """The installer types the blackbody's temperature at each prompt (here 3 readings of one set point at
    one room temperature: the offset alone is fitted) and an empty line; a typo is refused and asked again."""
    spot_sim.scene.ambient_c, spot_sim.scene.target_c = 24.0, 36.0
    cfg = _spot_config(tmp_path, spot_sim.path)
    proc = _gate("calibrate", "thermal", "-c", cfg, "--samples", 10, stdin="36.0\n3x.5\n36.0\n36.0\n\n")
    assert proc.returncode == 0, proc.stderr
    assert "'3x.5' in the reference temperature is not a number" in proc.stderr
    assert proc.stderr.count("  point ") == 3 and "ambient slope not fitted" in proc.stdout
    cal = load_config(cfg).temperature.calibration
    assert cal.sensor_offset_c is not None and abs(cal.sensor_offset_c + ERROR_OFFSET_C) <= OFFSET_TOLERANCE_C
    assert cal.sensor_ambient_coefficient == 0.0 and cal.spot_points == 3
