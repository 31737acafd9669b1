"""Typed results of the vision pipeline: what a detector finds and what the engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Detection:
    """One face found in an image: box (x, y, w, h) and 5 landmarks in the input image's pixels.

    Landmark order: right eye, left eye (as seen in the image: left-most first), nose tip, mouth right,
    mouth left, i.e. the insightface/ArcFace 5-point order.
    """

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: FloatArray  # shape (5, 2)

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@dataclass(frozen=True, eq=False)
class Quality:
    """Why a face is or is not good enough to recognise; `reasons` is empty when it is."""

    interocular_px: float
    sharpness: float
    yaw: float
    pitch: float
    score: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face with its embedding (float32, L2-normalised)."""

    bbox: tuple[float, float, float, float]
    score: float
    landmarks: FloatArray
    embedding: FloatArray
    quality: Quality | None = None

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "bbox": [round(float(v), 2) for v in self.bbox],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "embedding": [float(v) for v in self.embedding],
        }
        if self.quality is not None:
            out["quality"] = {
                "ok": self.quality.ok,
                "reasons": list(self.quality.reasons),
                "interocular_px": round(self.quality.interocular_px, 2),
                "sharpness": round(self.quality.sharpness, 1),
                "yaw": round(self.quality.yaw, 3),
                "pitch": round(self.quality.pitch, 3),
            }
        return out
