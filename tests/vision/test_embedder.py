"""SFace on onnxruntime (with the exact graph rewrite) vs OpenCV's FaceRecognizerSF on the same crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx

from edge.config.vision import EmbedderConfig, RuntimeConfig
from edge.vision import load_image
from edge.vision.embedder import OnnxEmbedder
from edge.vision.graph import prepare_model

MODEL = Path(__file__).resolve().parents[2] / "models" / "face_recognition_sface_2021dec.onnx"


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


def test_an_operator_arcface_style_model_is_loaded_by_config(tmp_path: Path, t1_path: Path) -> None:
    """An insightface-style ArcFace ONNX (input 1x3x112x112 RGB scaled (x - 127.5) / 127.5, output 512-d) named
    in the config with its sha256: a small one made here, as the real packs may not be shipped."""
    from onnx import TensorProto, helper, numpy_helper

    from edge.config.vision import VisionSection
    from edge.models import sha256_file
    from edge.vision import FaceEngine

    rng = np.random.default_rng(7)
    w = rng.standard_normal((3 * 4 * 4, 512)).astype(np.float32)
    b = rng.standard_normal(512).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[28, 28], strides=[28, 28]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w", "b"], ["fc1"])],
        "tiny-arcface", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    models = tmp_path / "models"
    models.mkdir()
    (models / "w600k_tiny.onnx").write_bytes(model.SerializeToString())
    yunet = MODEL.parent / "face_detection_yunet_2023mar.onnx"
    (models / yunet.name).symlink_to(yunet)
    cfg = VisionSection.model_validate({
        "models_dir": str(models),
        "detector": {"sha256": sha256_file(yunet)},
        "embedder": {"type": "arcface", "file": "w600k_tiny.onnx", "sha256": sha256_file(models / "w600k_tiny.onnx")}})
    engine = FaceEngine(cfg)
    assert engine.model_id == "w600k_tiny" and engine.match_threshold == 0.35  # ArcFace's calibrated default
    faces = engine.analyze(load_image(t1_path))
    assert len(faces) == 6 and all(f.embedding.shape == (512,) for f in faces)
    crop = engine.align(load_image(t1_path), faces[0])
    x = (crop[..., ::-1].astype(np.float32) - 127.5) / 127.5  # RGB, ArcFace scaling
    pooled = x.reshape(4, 28, 4, 28, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
    want = pooled @ w + b
    want /= np.linalg.norm(want)
    assert float(want @ faces[0].embedding) > 0.9999
    bad = cfg.model_copy(update={"embedder": cfg.embedder.model_copy(update={"sha256": "0" * 64})})
    import pytest

    from edge.models import ModelError

    with pytest.raises(ModelError, match="sha256"):
        FaceEngine(bad)
