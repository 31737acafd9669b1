"""Quality gate: blur, size, pose and score rejections carry reasons."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.config.vision import QualityConfig
from edge.vision import load_image
from edge.vision.face import Detection
from edge.vision.quality import assess, pose

FRONTAL = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32)


def test_pose_is_near_zero_for_the_template_and_grows_when_turned() -> None:
    yaw, pitch = pose(FRONTAL)
    assert yaw < 0.02 and pitch < 0.05
    turned = FRONTAL.copy()
    turned[2, 0] += 20  # nose far to one side: head turned
    assert pose(turned)[0] > 0.5
    tilted = FRONTAL.copy()
    tilted[2, 1] -= 15  # nose near the eye line: head tilted back
    assert pose(tilted)[1] > 0.45
    rotated = FRONTAL @ np.array([[0.8, -0.6], [0.6, 0.8]], np.float32)  # in-plane roll only
    yaw_r, pitch_r = pose(rotated)
    assert yaw_r < 0.02 and pitch_r < 0.05


def test_blur_and_small_faces_are_rejected_with_reasons(engine, t1_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = load_image(t1_path)
    det = engine.detect(image)[0]
    sharp = engine.assess(det, engine.align(image, det))
    assert sharp.ok, sharp.reasons
    blurred_img = cv2.GaussianBlur(image, (0, 0), 6)
    blurred = engine.assess(det, engine.align(blurred_img, det))
    assert "blurred" in blurred.reasons and blurred.sharpness < sharp.sharpness / 3
    tiny = Detection(bbox=det.bbox, score=det.score, landmarks=(det.landmarks - det.landmarks[0]) * 0.2 +
                     det.landmarks[0])
    assert "too_small" in assess(tiny, engine.align(image, det), QualityConfig()).reasons
    weak = Detection(bbox=det.bbox, score=0.5, landmarks=det.landmarks)
    assert "low_detection_score" in assess(weak, engine.align(image, det), QualityConfig()).reasons


def test_turned_and_tilted_faces_are_rejected_with_reasons(engine, t1_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = load_image(t1_path)
    det = engine.detect(image)[0]
    crop = engine.align(image, det)
    frontal = assess(det, crop, QualityConfig())
    assert "turned_away" not in frontal.reasons and "tilted" not in frontal.reasons
    iod = det.interocular
    turned = det.landmarks.copy()
    turned[2, 0] += 0.6 * iod  # the nose far towards one eye: the head is turned
    got = assess(Detection(bbox=det.bbox, score=det.score, landmarks=turned), crop, QualityConfig())
    assert "turned_away" in got.reasons and got.yaw > 0.45 and not got.ok
    tilted = det.landmarks.copy()
    tilted[2, 1] = (det.landmarks[0, 1] + det.landmarks[1, 1]) / 2 + 1  # nose at the eye line: head tilted back
    got = assess(Detection(bbox=det.bbox, score=det.score, landmarks=tilted), crop, QualityConfig())
    assert "tilted" in got.reasons and got.pitch > 0.45 and not got.ok
    lenient = QualityConfig(max_yaw=1.0, max_pitch=1.0)  # the limits are the config's
    assert "tilted" not in assess(Detection(bbox=det.bbox, score=det.score, landmarks=tilted), crop, lenient).reasons
