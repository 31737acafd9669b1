"""FaceEngine: detector + alignment + quality gate + embedder behind one small interface.

`FaceEngine.default()` loads the default models on CPU; `analyze(image)` returns every face,
largest first, each with an L2-normalised embedding; `identify` names a face against a Gallery.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge.config.vision import VisionSection
from edge.models import ModelError, check_model_file, load_manifest
from edge.vision.align import align
from edge.vision.detector import Detector, make_detector
from edge.vision.embedder import OnnxEmbedder
from edge.vision.face import Detection, Face, FloatArray, Quality
from edge.vision.gallery import Gallery, Match
from edge.vision.image import Image, to_bgr
from edge.vision.quality import assess

log = logging.getLogger(__name__)

# Cosine thresholds calibrated per embedder family (see tests/test_recognition.py and the README).
DEFAULT_THRESHOLDS = {"sface": 0.50, "arcface": 0.35}


def _model_path(models_dir: Path, file: str, sha256: str | None) -> tuple[Path, str]:
    """Resolve a model file, verify it (manifest hash, else the configured one), return (path, model id)."""
    path = models_dir / file
    manifest_path = models_dir / "manifest.toml"
    spec = load_manifest(manifest_path).by_file(file) if manifest_path.is_file() else None
    check_model_file(path, spec.sha256 if spec else sha256)
    return path, spec.name if spec else Path(file).stem


class FaceEngine:
    def __init__(self, cfg: VisionSection) -> None:
        self.cfg = cfg
        det_path, self.detector_id = _model_path(cfg.models_dir, cfg.detector.file, cfg.detector.sha256)
        emb_path, emb_id = _model_path(cfg.models_dir, cfg.embedder.file, cfg.embedder.sha256)
        self.model_id = cfg.embedder.model_id or emb_id
        try:
            self.detector: Detector = make_detector(det_path, cfg.detector, cfg.runtime)
            self.embedder = OnnxEmbedder(emb_path, cfg.embedder, cfg.runtime)
        except ModelError:
            raise
        except Exception as exc:  # onnx/onnxruntime raise many types for a damaged file
            raise ModelError(f"cannot load models from {cfg.models_dir} ({exc}); run `gate models fetch`") from exc
        self.match_threshold: float = (cfg.match.threshold if cfg.match.threshold is not None
                                       else DEFAULT_THRESHOLDS[cfg.embedder.type])
        self.match_margin: float = cfg.match.margin

    @classmethod
    def default(cls) -> FaceEngine:
        return cls(VisionSection())

    def detect(self, image: Image) -> list[Detection]:
        return self.detector.detect(to_bgr(image))

    def align(self, image: Image, det: Detection) -> Image:
        return align(image, det.landmarks)

    def assess(self, det: Detection, aligned: Image) -> Quality:
        return assess(det, aligned, self.cfg.quality)

    def embed_crops(self, crops: list[Image]) -> FloatArray:
        return self.embedder.embed(crops)

    def faces(self, image: Image, dets: list[Detection]) -> list[Face]:
        """Align, assess and embed the given detections (one batched network run)."""
        if not dets:
            return []
        crops = [self.align(image, d) for d in dets]
        embeddings = self.embed_crops(crops)
        return [
            Face(bbox=d.bbox, score=d.score, landmarks=d.landmarks, embedding=embeddings[i],
                 quality=self.assess(d, crops[i]))
            for i, d in enumerate(dets)
        ]

    def analyze(self, bgr_image: Image) -> list[Face]:
        """Every face in the image, largest first, with its embedding and quality."""
        image = to_bgr(bgr_image)
        return self.faces(image, self.detector.detect(image))

    def identify(self, embedding: FloatArray, gallery: Gallery) -> Match:
        if gallery.model_id != self.model_id:
            raise ValueError(f"gallery holds {gallery.model_id} templates, engine makes {self.model_id}")
        return gallery.match(embedding, self.match_threshold, self.match_margin, self.cfg.match.top_k)
