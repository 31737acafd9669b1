"""Face embedders on onnxruntime: SFace (default) and insightface-style ArcFace models. The exact load-time
graph rewrite that makes SFace fast on onnxruntime's CPU provider is in `edge.vision.graph`.

Input is always an aligned 112x112 BGR crop; output an L2-normalised float32 vector.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.config.vision import EmbedderConfig, RuntimeConfig
from edge.vision.face import FloatArray
from edge.vision.graph import prepared_model
from edge.vision.image import Image
from edge.vision.runtime import make_session

log = logging.getLogger(__name__)

CROP_SIZE = 112
# Pixel normalisation applied before the network, per family (mean, std), when the config gives none.
_NORMALISATION = {"sface": (0.0, 1.0), "arcface": (127.5, 127.5)}


class OnnxEmbedder:
    """Runs an embedding network on batches of aligned crops."""

    def __init__(self, model_path: Path, cfg: EmbedderConfig, runtime: RuntimeConfig) -> None:
        self.cfg = cfg
        kind = "embedder-optimized" if cfg.optimize_graph else "embedder"
        self.session = make_session(prepared_model(kind, model_path), runtime, model_path.name)
        self.input_name = self.session.get_inputs()[0].name
        self.mean, self.std = _NORMALISATION[cfg.type]
        out_shape = self.session.get_outputs()[0].shape
        self.dim = int(out_shape[-1]) if isinstance(out_shape[-1], int) else 0
        self.embed([np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)])  # warm-up at load
        if not self.dim:
            self.dim = int(self.embed([np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)]).shape[1])

    def raw(self, crops: list[Image]) -> FloatArray:
        """Network output for aligned BGR crops, not normalised: (n, dim) float32."""
        batch = np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # BGR->RGB, NCHW
        if self.mean != 0.0 or self.std != 1.0:
            batch = (batch - self.mean) / self.std
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0]
        return np.asarray(out, np.float32).reshape(len(crops), -1)

    def embed(self, crops: list[Image]) -> FloatArray:
        """L2-normalised embeddings for aligned BGR crops: (n, dim) float32."""
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        out = self.raw(crops)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: FloatArray = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
