"""YuNet on onnxruntime with our own pre/post-processing vs OpenCV's FaceDetectorYN, on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.vision import load_image
from edge.vision.config import DetectorConfig, RuntimeConfig
from edge.vision.detector import YuNetDetector

MODEL = Path(__file__).resolve().parent.parent / "models" / "face_detection_yunet_2023mar.onnx"


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module")
def native() -> YuNetDetector:
    # max_side large: run at the image's own size, as FaceDetectorYN does when given that size
    return YuNetDetector(MODEL, DetectorConfig(max_side=4096, score_threshold=0.7), RuntimeConfig())


def test_matches_opencv_facedetectoryn_on_real_photos(native: YuNetDetector, t1_path: Path, hanks_path: Path,
                                                      unknown_photos: list[Path]) -> None:
    photos = [t1_path, hanks_path, *unknown_photos[::6]]
    compared = 0
    for path in photos:
        image = load_image(path)
        h, w = image.shape[:2]
        ref_det = cv2.FaceDetectorYN.create(str(MODEL), "", (w, h), 0.7, 0.3, 5000)
        _, ref = ref_det.detect(image)
        ref = np.zeros((0, 15), np.float32) if ref is None else ref
        ours = native.detect(image)
        assert len(ours) == len(ref), path.name
        for r in ref:
            best = max(ours, key=lambda d: iou(tuple(r[:4]), d.bbox))
            assert iou(tuple(r[:4]), best.bbox) >= 0.95, path.name
            assert np.abs(best.landmarks - r[4:14].reshape(5, 2)).max() < 2.0
            assert abs(best.score - float(r[14])) < 1e-3
            compared += 1
    assert compared >= 30


def test_finds_every_face_in_the_group_photo(engine, t1_path: Path) -> None:  # type: ignore[no-untyped-def]
    faces = engine.analyze(load_image(t1_path))
    assert len(faces) == 6
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_boxes_are_in_input_pixels_when_the_frame_is_scaled(t1_path: Path) -> None:
    image = load_image(t1_path)  # 1280x886
    small = YuNetDetector(MODEL, DetectorConfig(max_side=640), RuntimeConfig())
    full = YuNetDetector(MODEL, DetectorConfig(max_side=4096), RuntimeConfig())
    a, b = small.detect(image), full.detect(image)
    assert len(a) == len(b) == 6
    for d in b:
        assert max(iou(d.bbox, x.bbox) for x in a) > 0.8


def test_odd_sizes_are_padded_not_refused(native: YuNetDetector, hanks_path: Path) -> None:
    image = load_image(hanks_path)
    canvas = np.full((333, 517, 3), 127, np.uint8)
    canvas[100:212, 200:312] = image
    dets = native.detect(canvas)
    assert len(dets) == 1
    x, y, _w, _h = dets[0].bbox
    assert 190 < x < 240 and 90 < y < 150


def test_blank_frame_has_no_faces(native: YuNetDetector) -> None:
    assert native.detect(np.zeros((480, 640, 3), np.uint8)) == []
