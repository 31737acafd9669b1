"""Face detectors: YuNet (default) with our own pre/post-processing on onnxruntime, and SCRFD
through insightface's model zoo when an operator supplies such a model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.config.vision import DetectorConfig, RuntimeConfig
from edge.vision.face import Detection, FloatArray
from edge.vision.graph import prepared_model
from edge.vision.image import Image
from edge.vision.runtime import make_session

log = logging.getLogger(__name__)

_STRIDES = (8, 16, 32)


class Detector(Protocol):
    def detect(self, image: Image) -> list[Detection]:
        """All faces in a BGR uint8 image, largest first."""
        ...


class YuNetDetector:
    """YuNet 2023mar: anchor-free, three strides, cls/obj/bbox/kps heads per stride."""

    def __init__(self, model_path: Path, cfg: DetectorConfig, runtime: RuntimeConfig) -> None:
        self.cfg = cfg
        self.session = make_session(prepared_model("detector", model_path), runtime, model_path.name)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.detect(np.zeros((480, 640, 3), np.uint8))  # warm-up: allocations and kernels at load

    def _blob(self, image: Image) -> tuple[FloatArray, float]:
        h, w = image.shape[:2]
        scale = min(1.0, self.cfg.max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
            h, w = image.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        # zeros only where there is padding; one plane at a time (faster than a strided HWC->CHW copy)
        blob = np.zeros((1, 3, ph, pw), np.float32) if (ph, pw) != (h, w) else np.empty((1, 3, ph, pw), np.float32)
        for channel, plane in enumerate(cv2.split(image)):
            blob[0, channel, :h, :w] = plane
        return blob, scale

    def detect(self, image: Image) -> list[Detection]:
        blob, scale = self._blob(image)
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: blob}),
                           strict=True))
        ph, pw = blob.shape[2:]
        boxes, scores, kps = [], [], []
        for stride in _STRIDES:
            rows, cols = ph // stride, pw // stride
            cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
            obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.cfg.score_threshold)[0]
            if keep.size == 0:
                continue
            r, c = (keep // cols).astype(np.float32), (keep % cols).astype(np.float32)
            bb = outputs[f"bbox_{stride}"].reshape(rows * cols, 4)[keep]
            cx, cy = (c + bb[:, 0]) * stride, (r + bb[:, 1]) * stride
            bw, bh = np.exp(bb[:, 2]) * stride, np.exp(bb[:, 3]) * stride
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1))
            kp = outputs[f"kps_{stride}"].reshape(rows * cols, 10)[keep].reshape(-1, 5, 2)
            kp = (kp + np.stack([c, r], axis=1)[:, None, :]) * stride
            kps.append(kp)
            scores.append(score[keep])
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes).astype(np.float32)
        all_scores = np.concatenate(scores).astype(np.float32)
        all_kps = np.concatenate(kps).astype(np.float32)
        keep_idx = cv2.dnn.NMSBoxes(all_boxes.tolist(), all_scores.tolist(), self.cfg.score_threshold,
                                    self.cfg.nms_threshold)
        dets = []
        # NMSBoxes returns indices by descending score; the cap applies after suppression, not before
        for i in np.asarray(keep_idx, dtype=np.int64).reshape(-1)[: self.cfg.top_k]:
            x, y, bw_, bh_ = (all_boxes[i] / scale).tolist()
            dets.append(Detection(bbox=(x, y, bw_, bh_), score=float(all_scores[i]),
                                  landmarks=(all_kps[i] / scale).astype(np.float32)))
        dets.sort(key=lambda d: d.area, reverse=True)
        return dets


class ScrfdDetector:
    """SCRFD models (insightface packs, non-commercial licence) loaded through insightface's model zoo."""

    def __init__(self, model_path: Path, cfg: DetectorConfig, runtime: RuntimeConfig) -> None:
        from insightface.model_zoo import get_model

        self.cfg = cfg
        model = get_model(str(model_path), providers=runtime.providers)
        if model is None or model.__class__.__name__ != "SCRFD":
            raise ValueError(f"{model_path.name} is not an SCRFD detection model")
        size = self.cfg.max_side - self.cfg.max_side % 32
        model.prepare(ctx_id=-1, input_size=(size, size), det_thresh=cfg.score_threshold, nms_thresh=cfg.nms_threshold)
        self.model = model

    def detect(self, image: Image) -> list[Detection]:
        bboxes, kpss = self.model.detect(image, max_num=self.cfg.top_k)
        dets = []
        for i in range(bboxes.shape[0]):
            x1, y1, x2, y2, score = (float(v) for v in bboxes[i])
            if kpss is None:
                continue
            dets.append(Detection(bbox=(x1, y1, x2 - x1, y2 - y1), score=score,
                                  landmarks=np.asarray(kpss[i], np.float32).reshape(5, 2)))
        dets.sort(key=lambda d: d.area, reverse=True)
        return dets


def make_detector(model_path: Path, cfg: DetectorConfig, runtime: RuntimeConfig) -> Detector:
    if cfg.type == "yunet":
        return YuNetDetector(model_path, cfg, runtime)
    return ScrfdDetector(model_path, cfg, runtime)
