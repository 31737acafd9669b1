"""The calibration fits (edge.calibration), the config table they are written to and how the temperature
estimate uses it: exact recovery from exact points, refusals, and the file kept around the table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from drivers.emulators.thermal import Scene, render_frame
from edge.calibration import (
    AffinePoint,
    CalibrationError,
    SpotPoint,
    blob_centre,
    fit_affine,
    fit_spot,
)
from edge.config import ConfigError, load_config
from edge.config.calibration_file import BEGIN, END, calibrated_text, write_calibration
from edge.config.temperature import TemperatureConfig, ThermalCalibration
from edge.temperature import canthus_region, estimate_spot, map_points


def _spot_points(offset: float, slope: float, ambients: list[float], refs: list[float]) -> list[SpotPoint]:
    # the sensor reads the reference plus its error: -(offset + slope * (24 - ambient))
    return [SpotPoint(r, r - (offset + slope * (24.0 - a)), a) for a, r in zip(ambients, refs, strict=True)]


def test_fit_spot_recovers_offset_and_slope_exactly() -> None:
    fit = fit_spot(_spot_points(-0.7, 0.08, [16, 22, 28, 31], [35, 37, 33, 40]))
    assert fit.slope_fitted
    assert fit.offset_c == pytest.approx(-0.7, abs=1e-9) and fit.ambient_coefficient == pytest.approx(0.08, abs=1e-9)
    assert fit.max_c < 1e-9 and fit.rms_c < 1e-9


def test_fit_spot_at_one_room_temperature_fits_the_offset_only() -> None:
    fit = fit_spot(_spot_points(0.4, 0.0, [23.5, 23.8, 24.1], [33, 37, 41]))
    assert not fit.slope_fitted and fit.ambient_coefficient == 0.0
    assert fit.offset_c == pytest.approx(0.4, abs=1e-9)


def test_fit_spot_residual_shows_an_inconsistent_point() -> None:
    points = _spot_points(0.0, 0.0, [18, 24, 30, 26], [35, 37, 33, 36])
    points[1] = SpotPoint(37.0, 37.9, 24.0)  # one point off by 0.9 C
    fit = fit_spot(points)
    assert 0.5 < fit.max_c < 0.9 and fit.rms_c < fit.max_c


@pytest.mark.parametrize("points", [
    [], [SpotPoint(35, 35.5, 24)], [SpotPoint(35, 35.5, 18), SpotPoint(37, 37.4, 30)],
])
def test_fit_spot_refuses_too_few_points(points: list[SpotPoint]) -> None:
    with pytest.raises(CalibrationError, match="too few"):
        fit_spot(points)


def test_fit_spot_refuses_non_finite_values() -> None:
    with pytest.raises(CalibrationError, match="finite"):
        fit_spot([SpotPoint(35, math.nan, 24), SpotPoint(36, 36, 24), SpotPoint(37, 37, 24)])


def test_fit_affine_recovers_the_map_exactly() -> None:
    truth = [[0.05, 0.002, 1.5], [-0.001, 0.048, -0.4]]
    cam = [(50, 40), (600, 60), (580, 430), (30, 450), (320, 240)]
    mapped = map_points(cam, truth)
    fit = fit_affine([AffinePoint(x, y, float(c), float(r)) for (x, y), (c, r) in zip(cam, mapped, strict=True)])
    assert np.allclose(fit.affine, truth, atol=1e-9) and fit.max_px < 1e-9


def test_fit_affine_refuses_too_few_and_collinear_positions() -> None:
    with pytest.raises(CalibrationError, match="too few"):
        fit_affine([AffinePoint(0, 0, 0, 0), AffinePoint(1, 0, 1, 0), AffinePoint(0, 1, 0, 1)])
    line = [AffinePoint(x, 2 * x, x / 20, x / 10) for x in (10.0, 50.0, 90.0, 130.0)]
    with pytest.raises(CalibrationError, match="one line"):
        fit_affine(line)


def test_blob_centre_finds_a_warm_target_between_pixels() -> None:
    frame = render_frame(Scene(face_present=False, warm_target=(12.4, 8.7), warm_target_sigma_px=1.5))
    col, row = blob_centre(frame, min_contrast=3.0)
    assert abs(col - 12.4) < 0.1 and abs(row - 8.7) < 0.1
    with pytest.raises(CalibrationError, match="no target"):
        blob_centre(render_frame(Scene(face_present=False)), min_contrast=3.0)


def test_estimate_uses_the_calibrated_sensor_error_and_map() -> None:
    plain = TemperatureConfig()
    cal = plain.model_copy(update={"calibration": ThermalCalibration(
        sensor_offset_c=-0.5, sensor_ambient_coefficient=0.05,
        thermal_affine=[[0.04, 0.0, 2.0], [0.0, 0.04, 1.0]])})
    before = estimate_spot(35.0, 20.0, None, plain)
    after = estimate_spot(35.0, 20.0, None, cal)
    assert after.body_c - before.body_c == pytest.approx(-0.5 + 0.05 * 4, abs=0.011)
    assert after.sensor_correction_c == pytest.approx(-0.3) and before.sensor_correction_c == 0.0
    landmarks = [[200, 200], [280, 200], [240, 240], [210, 280], [270, 280]]
    assert canthus_region(landmarks, cal, (24, 32)) != canthus_region(landmarks, plain, (24, 32))
    assert cal.affine() == [[0.04, 0.0, 2.0], [0.0, 0.04, 1.0]] and plain.affine() == plain.thermal_affine


def test_written_table_replaces_a_hand_written_one_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text('# my gate\n[temperature.calibration]\nsensor_offset_c = 1.0\n\n# the lane\n[lane]\n'
                    'votes_k = 2\n', encoding="utf-8")
    path.chmod(0o640)
    cal = ThermalCalibration(sensor_offset_c=-0.25, sensor_ambient_coefficient=0.01, spot_points=3)
    write_calibration(path, cal)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# my gate\n\n# the lane\n[lane]\nvotes_k = 2\n") and text.count(BEGIN) == 1
    assert END in text and (path.stat().st_mode & 0o777) == 0o640
    loaded = load_config(path)
    assert loaded.temperature.calibration == cal and loaded.lane.votes_k == 2
    assert calibrated_text(text, cal) == text  # written again: the same file


def test_write_refuses_a_file_that_would_not_load(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    original = '[temperature]\ncalibration = { sensor_offset_c = 1.0 }\n'
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ConfigError, match="would not load"):
        write_calibration(path, ThermalCalibration(sensor_offset_c=0.1))
    assert path.read_text(encoding="utf-8") == original
    path.write_text("[lane]\nvote_k = 2\n", encoding="utf-8")  # broken before: said so, not blamed on the table
    with pytest.raises(ConfigError, match="does not load now"):
        write_calibration(path, ThermalCalibration(sensor_offset_c=0.1))
