"""SFace on onnxruntime (with the exact graph rewrite) vs OpenCV's FaceRecognizerSF on the same crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx

from edge.vision import load_image
from edge.vision.config import EmbedderConfig, RuntimeConfig
from edge.vision.embedder import OnnxEmbedder
from edge.vision.graph import prepare_model

MODEL = Path(__file__).resolve().parent.parent / "models" / "face_recognition_sface_2021dec.onnx"


def _crops(engine, paths: list[Path]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    crops = []
    for p in paths:
        image = load_image(p)
        crops += [engine.align(image, d) for d in engine.detect(image)[:2]]
    return crops


def test_cosine_to_opencv_feature_on_the_same_crop(engine, t1_path: Path,  # type: ignore[no-untyped-def]
                                                   unknown_photos: list[Path]) -> None:
    crops = _crops(engine, [t1_path, *unknown_photos[::20]])
    assert len(crops) >= 12
    recognizer = cv2.FaceRecognizerSF.create(str(MODEL), "")
    ours = engine.embed_crops(crops)
    for crop, emb in zip(crops, ours, strict=True):
        ref = recognizer.feature(crop).reshape(-1)
        ref /= np.linalg.norm(ref)
        assert float(ref @ emb) >= 0.999
        assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
        assert emb.dtype == np.float32


def test_graph_rewrite_keeps_embeddings_identical(engine, t1_path: Path) -> None:  # type: ignore[no-untyped-def]
    crops = _crops(engine, [t1_path])
    plain = OnnxEmbedder(MODEL, EmbedderConfig(optimize_graph=False), RuntimeConfig())
    fast = OnnxEmbedder(MODEL, EmbedderConfig(optimize_graph=True), RuntimeConfig())
    a, b = plain.embed(crops), fast.embed(crops)
    cos = np.sum(a * b, axis=1)
    assert cos.min() >= 0.9999
    rewritten = onnx.load_from_string(prepare_model(MODEL, optimize=True))
    assert not any(n.op_type == "PRelu" for n in rewritten.graph.node)


def test_batch_equals_one_by_one(engine, t1_path: Path) -> None:  # type: ignore[no-untyped-def]
    crops = _crops(engine, [t1_path])
    batch = engine.embed_crops(crops)
    single = np.concatenate([engine.embed_crops([c]) for c in crops])
    assert np.abs(batch - single).max() < 1e-5


def test_runtime_options_reach_the_onnxruntime_session() -> None:
    from edge.vision.runtime import make_session

    cfg = RuntimeConfig(intra_op_threads=1, inter_op_threads=1, graph_optimization="basic")
    session = make_session(prepare_model(MODEL, True), cfg, MODEL.name)
    opts = session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    import onnxruntime as ort

    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session.get_providers() == ["CPUExecutionProvider"]
