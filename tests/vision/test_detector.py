"""YuNet on onnxruntime with our own pre/post-processing vs OpenCV's FaceDetectorYN, on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config.vision import DetectorConfig, RuntimeConfig
from edge.vision import load_image
from edge.vision.detector import YuNetDetector

MODEL = Path(__file__).resolve().parents[2] / "models" / "face_detection_yunet_2023mar.onnx"


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


def _tiny_scrfd(path: Path) -> None:
    """An SCRFD-shaped ONNX (insightface's 9-output layout: scores, boxes, keypoints at strides 8/16/32, two
    anchors per cell), small enough to make here: a stride-32 cell's score is its mean brightness (through a
    steep sigmoid), every box reaches 2 strides from its anchor and the 5 keypoints sit at fixed offsets. The
    real packs are insightface's (non-commercial) and may not be shipped or fetched."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    heads = {"score": 1, "bbox": 4, "kps": 10}
    for head, ch in heads.items():
        for s in (8, 16, 32):
            name = f"{head}_{s}"
            w = np.zeros((2 * ch, 3, s, s), np.float32)
            b = np.zeros(2 * ch, np.float32)
            if head == "score":
                if s == 32:
                    w[:] = 40.0 / (3 * s * s)  # mean of the blob (about -1 black .. +1 white), times 40
                    b[:] = -20.0  # so black cells score ~0 and a white cell ~1
                else:
                    b[:] = -30.0
            elif head == "bbox":
                b[:] = 2.0  # distances in strides: left, top, right, bottom
            else:
                b[:] = np.tile(np.array([-0.6, -0.5, 0.6, -0.5, 0.0, 0.1, -0.5, 0.7, 0.5, 0.7], np.float32), 2)
            inits += [numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")]
            nodes.append(helper.make_node("Conv", ["input.1", name + "_w", name + "_b"], [name + "_c"],
                                          kernel_shape=[s, s], strides=[s, s]))
            last = name + "_c"
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [last], [name + "_sig"]))
                last = name + "_sig"
            nodes.append(helper.make_node("Transpose", [last], [name + "_t"], perm=[0, 2, 3, 1]))
            inits.append(numpy_helper.from_array(np.array([-1, ch], np.int64), name + "_shape"))
            nodes.append(helper.make_node("Reshape", [name + "_t", name + "_shape"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, ch]))
    graph = helper.make_graph(nodes, "tiny-scrfd", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT,
                                                                                  [1, 3, 640, 640])],
                              outputs, inits)
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())


def test_an_operator_scrfd_model_through_insightfaces_model_zoo(tmp_path: Path) -> None:
    from edge.vision.detector import ScrfdDetector

    model = tmp_path / "scrfd_tiny_kps.onnx"
    _tiny_scrfd(model)
    det = ScrfdDetector(model, DetectorConfig(type="scrfd", file=model.name, score_threshold=0.5),
                        RuntimeConfig())
    image = np.zeros((640, 640, 3), np.uint8)
    assert det.detect(image) == []  # nothing bright: no face
    image[320:352, 224:256] = 255  # one bright stride-32 cell: column 7, row 10; SCRFD's anchor is its corner
    faces = det.detect(image)
    assert len(faces) == 1
    x, y, w, h = faces[0].bbox
    assert (x, y, w, h) == pytest.approx((224 - 64, 320 - 64, 128, 128), abs=1)  # anchor +- 2 strides
    assert faces[0].score > 0.9 and faces[0].landmarks.shape == (5, 2)
    assert faces[0].landmarks[0] == pytest.approx((224 - 0.6 * 32, 320 - 0.5 * 32), abs=1)
