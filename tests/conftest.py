"""Shared fixtures: the real default engine and the real photos that packages ship."""

from __future__ import annotations

import os
from pathlib import Path

import insightface
import pytest

from edge.models import fetch_samples, load_manifest

INSIGHTFACE_IMAGES = Path(insightface.__file__).resolve().parent / "data" / "images"


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from edge.vision import FaceEngine

    return FaceEngine.default()


@pytest.fixture(scope="session")
def t1_path() -> Path:
    return INSIGHTFACE_IMAGES / "t1.jpg"


@pytest.fixture(scope="session")
def hanks_path() -> Path:
    return INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png"


@pytest.fixture(scope="session")
def unknowns_dir() -> Path:
    spec = load_manifest().samples["ctu_unknowns"]
    return fetch_samples(spec)


@pytest.fixture(scope="session")
def unknown_photos(unknowns_dir: Path) -> list[Path]:
    photos = sorted(unknowns_dir.glob("*.jpg"))
    assert len(photos) == 186
    return photos


def pytest_configure(config: pytest.Config) -> None:
    # onnxruntime and OpenCV: quiet and deterministic thread use in tests.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
