"""5-point alignment of a face to the standard 112x112 ArcFace template (insightface's norm_crop)."""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from insightface.utils.face_align import norm_crop

from edge.vision.face import FloatArray
from edge.vision.image import Image

CROP_SIZE = 112
# insightface calls a scikit-image API that warns of its own deprecation on every call.
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface.utils.face_align")


def align(image: Image, landmarks: FloatArray) -> Image:
    crop = norm_crop(image, np.asarray(landmarks, np.float32).reshape(5, 2), image_size=CROP_SIZE)
    return np.ascontiguousarray(crop, dtype=np.uint8)
