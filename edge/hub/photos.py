"""The hub's own face engine for enrolment photos and the 1:1 check: loaded once, on first use; a photo
becomes an embedding (or one protocol `templates` object) and is not kept."""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any


def templates_of(vec: Sequence[float], model_id: str) -> dict[str, Any]:
    """One embedding as the protocol's `templates` member (base64 of little-endian float32)."""
    import numpy as np

    arr = np.asarray(vec, dtype="<f4")
    return {"model_id": model_id, "embeddings": [base64.b64encode(arr.tobytes()).decode("ascii")]}


class HubFaces:
    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                from edge.config.vision import VisionSection
                from edge.vision import FaceEngine

                self._engine = FaceEngine(VisionSection())
            return self._engine

    def embed(self, photo: bytes, what: str = "the photo") -> list[float]:
        """The largest face's embedding; ValueError (one line) when there is none or it is too poor."""
        from edge.vision.image import ImageError, decode_image

        try:
            faces = self.engine.analyze(decode_image(photo, what))
        except ImageError as exc:
            raise ValueError(str(exc)) from exc
        if not faces:
            raise ValueError(f"{what}: no face found")
        if faces[0].quality is not None and not faces[0].quality.ok:
            raise ValueError(f"{what}: face quality too low ({', '.join(faces[0].quality.reasons)})")
        return [float(x) for x in faces[0].embedding]

    def templates(self, photo: bytes, what: str = "the photo") -> dict[str, Any]:
        return templates_of(self.embed(photo, what), self.engine.model_id)
