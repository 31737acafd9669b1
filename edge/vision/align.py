"""5-point alignment of a face to the standard 112x112 ArcFace template (insightface's `norm_crop`).

The transform is the least-squares similarity (rotation, uniform scale, shift; no reflection) from the
five landmarks to insightface's `arcface_dst` template (ARCFACE_TEMPLATE below), as
`insightface.utils.face_align.estimate_norm` computes it through scikit-image's Umeyama estimator. Here it
is the closed form of the same least-squares problem (points as complex numbers: w = a*z + b), which gives
the same matrix (tested to 1e-4 px) in a few microseconds instead of scikit-image's ~0.7 ms per face; the
warp is norm_crop's own cv2.warpAffine.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.face import FloatArray
from edge.vision.image import Image

CROP_SIZE = 112
# insightface's `arcface_dst` (utils/face_align.py), the standard 5-point template in a 112x112 crop:
# eyes, nose tip, mouth corners. Kept here so the gate process need not import insightface (about 60 MB
# of resident memory: scikit-image, SciPy) just for ten numbers; tests/test_align.py checks they are its.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
_TEMPLATE = ARCFACE_TEMPLATE[:, 0].astype(np.float64) + 1j * ARCFACE_TEMPLATE[:, 1].astype(np.float64)


def similarity_matrix(landmarks: FloatArray) -> FloatArray:
    """The 2x3 affine matrix taking the 5 landmarks (image pixels) onto the 112x112 ArcFace template."""
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    z = pts[:, 0] + 1j * pts[:, 1]
    zc, wc = z - z.mean(), _TEMPLATE - _TEMPLATE.mean()
    denom = float(np.vdot(zc, zc).real)
    a = np.vdot(zc, wc) / denom if denom > 0 else 0.0  # vdot conjugates its first argument
    b = _TEMPLATE.mean() - a * z.mean()
    m: FloatArray = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)
    return m


def align(image: Image, landmarks: FloatArray) -> Image:
    crop = cv2.warpAffine(image, similarity_matrix(landmarks), (CROP_SIZE, CROP_SIZE), borderValue=0.0)
    return np.ascontiguousarray(crop, dtype=np.uint8)
