"""Quality gate before recognition: is this face good enough to embed and name?

Every rejection carries a machine-readable reason; a face that fails is tracked but never named.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.config.vision import QualityConfig
from edge.vision.face import Detection, Quality
from edge.vision.image import Image

# Relative height of the nose between the eye line (0) and the mouth line (1) in a frontal face,
# taken from the ArcFace 5-point template.
_FRONTAL_NOSE_HEIGHT = (71.7366 - 51.6) / (92.28 - 51.6)


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) estimates from 5 landmarks, 0 for a frontal face, about 1 near profile / extreme tilt."""
    eye_r, eye_l, nose, mouth_r, mouth_l = (landmarks[i].astype(np.float64) for i in range(5))
    eye_mid, mouth_mid = (eye_r + eye_l) / 2, (mouth_r + mouth_l) / 2
    iod = float(np.linalg.norm(eye_l - eye_r)) or 1e-6
    axis = eye_l - eye_r
    axis /= np.linalg.norm(axis) or 1e-6
    yaw = abs(float(np.dot(nose - eye_mid, axis))) / iod
    down = np.array([-axis[1], axis[0]])
    span = float(np.dot(mouth_mid - eye_mid, down)) or 1e-6
    rel = float(np.dot(nose - eye_mid, down)) / span
    pitch = abs(rel - _FRONTAL_NOSE_HEIGHT) * 2.0
    return yaw, pitch


def sharpness(aligned: Image) -> float:
    """Variance of the Laplacian of the aligned crop's grey levels (low = blurred)."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def assess(det: Detection, aligned: Image, cfg: QualityConfig) -> Quality:
    iod = det.interocular
    sharp = sharpness(aligned)
    yaw, pitch = pose(det.landmarks)
    reasons = []
    if det.score < cfg.min_score:
        reasons.append("low_detection_score")
    if iod < cfg.min_interocular_px:
        reasons.append("too_small")
    if sharp < cfg.min_sharpness:
        reasons.append("blurred")
    if yaw > cfg.max_yaw:
        reasons.append("turned_away")
    if pitch > cfg.max_pitch:
        reasons.append("tilted")
    return Quality(interocular_px=iod, sharpness=sharp, yaw=yaw, pitch=pitch, score=det.score,
                   reasons=tuple(reasons))
