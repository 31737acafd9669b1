"""Body temperature estimation and thermal liveness, on frames the MLX90640 simulator renders."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from drivers.emulators.thermal import Scene, eye_geometry, render_frame
from edge.config.policy import PolicyConfig
from edge.temperature import (
    TemperatureConfig,
    ambient_correction,
    canthus_region,
    check_liveness,
    distance_from_face,
    estimate_array,
    estimate_spot,
    face_rect,
    map_points,
)

CFG = TemperatureConfig()


def camera_face(scene: Scene, scale: float = 0.05) -> tuple[list[float], np.ndarray]:
    """The camera bbox and 5 landmarks of the scene's face, for the default affine (camera = thermal / "
      "scale)."""
    (lx, ly), (rx, _), _ = eye_geometry(scene)
    # canthus = eye + f * (other - eye) -> eye centres from the canthi
    f = CFG.canthus_fraction
    half = (rx - lx) / 2 / (1 - 2 * f)
    cx = (lx + rx) / 2
    eyes = [(cx - half, ly), (cx + half, ly)]
    fx, fy = scene.face_center
    hw, hh = scene.face_half_size
    lm = np.array([*eyes, (fx, fy + 1), (fx - 1.5, fy + 3), (fx + 1.5, fy + 3)]) / scale
    bbox = [(fx - hw) / scale, (fy - hh) / scale, 2 * hw / scale, 2 * hh / scale]
    return bbox, lm


def test_config_fields_documented_and_strict() -> None:
    assert all(f.description for f in TemperatureConfig.model_fields.values())
    with pytest.raises(ValidationError):
        TemperatureConfig.model_validate({"bogus": 1})
    with pytest.raises(ValidationError, match="2 rows of 3"):
        TemperatureConfig(thermal_affine=[[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValidationError, match="singular"):
        TemperatureConfig(thermal_affine=[[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]])
    with pytest.raises(ValidationError):
        TemperatureConfig(blackbody_rect=[0, 0, 0, 3])
    with pytest.raises(ValidationError):
        TemperatureConfig(min_body_c=39.0, max_body_c=38.5)


def test_spot_estimate_carries_its_inputs() -> None:
    est = estimate_spot(34.5, 24.0, 160.0, CFG)
    assert est.valid and est.source == "spot"
    assert est.body_c == pytest.approx(34.5 + 2.3)
    assert (est.raw_c, est.offset_c, est.ambient_c, est.ambient_correction_c) == (34.5, 2.3, 24.0, 0.0)
    assert est.distance_m == pytest.approx(0.5) and est.distance_correction_c == 0.0
    assert est.blackbody_correction_c is None and est.region == ()


def test_ambient_and_distance_compensation() -> None:
    assert ambient_correction(14.0, CFG) == pytest.approx(1.0)  # a cold room: skin reads low
    assert ambient_correction(34.0, CFG) == pytest.approx(-1.0)
    assert ambient_correction(-30.0, CFG) == CFG.max_ambient_correction_c  # limited
    assert ambient_correction(math.nan, CFG) == 0.0 and ambient_correction(None, CFG) == 0.0
    assert distance_from_face(80.0, CFG) == pytest.approx(1.0)
    cold_far = estimate_spot(33.5, 14.0, 100.0, CFG)
    assert cold_far.distance_m == pytest.approx(0.8)
    assert cold_far.distance_correction_c == pytest.approx(0.4 * 0.3)
    assert cold_far.body_c == pytest.approx(33.5 + 2.3 + 1.0 + 0.12, abs=0.01)
    too_far = estimate_spot(34.5, 24.0, 40.0, CFG)
    assert not too_far.valid and "too far" in str(too_far.reason)
    wall = estimate_spot(24.5, 24.0, 160.0, CFG)
    assert not wall.valid and "not skin" in str(wall.reason)


def test_affine_mapping() -> None:
    cfg = TemperatureConfig(thermal_affine=[[0.05, 0.0, -1.0], [0.0, 0.05, 2.0]])
    mapped = map_points([[100, 100], [0, 0]], cfg.thermal_affine)
    np.testing.assert_allclose(mapped, [[4.0, 7.0], [-1.0, 2.0]])
    assert face_rect([0, 0, 640, 480], CFG, (24, 32)) == (0, 24, 0, 32)
    assert face_rect([5000, 5000, 10, 10], CFG, (24, 32)) is None


@pytest.mark.parametrize("fever, expected", [(False, 36.8), (True, 38.5)])
def test_array_estimate_at_the_inner_canthus(fever: bool, expected: float) -> None:
    scene = Scene(pixel_noise_c=0.0, hot_object=(0, 0, 3, 3), hot_object_c=45.0)  # a lamp in view
    frame = render_frame(scene, fever=fever)
    bbox, lm = camera_face(scene)
    est = estimate_array(frame, bbox, lm, CFG, ambient_c=24.0)
    assert est.valid, est.reason
    assert est.body_c == pytest.approx(expected, abs=0.05)
    assert float(frame.max()) == pytest.approx(45.0)  # the warmest pixel is the lamp, not the person
    (lx, ly), (rx, _), _ = eye_geometry(scene)
    assert (round(ly), round(lx)) in est.region and (round(ly), round(rx)) in est.region
    assert all(abs(r - ly) <= 1 for r, _ in est.region)
    assert (est.body_c >= PolicyConfig().fever_c) is fever  # the policy's threshold decides


def test_array_estimate_follows_the_face() -> None:
    scene = Scene(face_center=(7.0, 11.0), pixel_noise_c=0.0)
    frame = render_frame(scene)
    bbox, lm = camera_face(scene)
    est = estimate_array(frame, bbox, lm, CFG, ambient_c=24.0)
    assert est.valid and est.body_c == pytest.approx(36.8, abs=0.05)
    shifted = lm + np.array([400.0, 0.0])
    wrong_place = estimate_array(frame, [500, 100, 180, 240], shifted, CFG, ambient_c=24.0)
    assert not wrong_place.valid  # the eyes were mapped onto the wall


def test_blackbody_corrects_drift() -> None:
    scene = Scene(pixel_noise_c=0.0, blackbody=(28, 20, 3, 3), blackbody_c=35.0, drift_c=1.2)
    frame = render_frame(scene)
    bbox, lm = camera_face(scene)
    uncorrected = estimate_array(frame, bbox, lm, CFG, ambient_c=24.0)
    assert uncorrected.body_c == pytest.approx(38.0, abs=0.05)  # a drifted sensor: a false fever
    cfg = TemperatureConfig(blackbody_enabled=True, blackbody_c=35.0, blackbody_rect=[28, 20, 3, 3])
    est = estimate_array(frame, bbox, lm, cfg, ambient_c=24.0)
    assert est.valid and est.blackbody_correction_c == pytest.approx(-1.2)
    assert est.body_c == pytest.approx(36.8, abs=0.05) and est.body_c < PolicyConfig().fever_c
    blocked = render_frame(Scene(pixel_noise_c=0.0))  # no blackbody where one is configured
    est2 = estimate_array(blocked, bbox, lm, cfg, ambient_c=24.0)
    assert not est2.valid and "blackbody" in str(est2.reason)


def test_eyes_outside_frame() -> None:
    frame = render_frame(Scene(pixel_noise_c=0.0))
    est = estimate_array(frame, [2000, 2000, 100, 100], [[2000, 2000], [2050, 2000], [0, 0], [0, 0], [0, 0]],
                         CFG)
    assert not est.valid and "outside" in str(est.reason) and est.region == ()
    assert canthus_region([[2000, 2000], [2050, 2000]], CFG, (24, 32)) == ()


def test_liveness_warm_face_vs_photo() -> None:
    scene = Scene()
    bbox, _ = camera_face(scene)
    rng = np.random.default_rng(0)
    live = check_liveness(render_frame(scene, rng=rng), bbox, CFG)
    assert live.live and live.contrast_c is not None and live.contrast_c > 8
    photo = check_liveness(render_frame(scene, photo=True, rng=rng), bbox, CFG)
    assert not photo.live and photo.face_c is not None and photo.face_c < 26
    assert photo.reason
    outside = check_liveness(render_frame(scene), [5000, 5000, 10, 10], CFG)
    assert not outside.live and "outside" in str(outside.reason)
