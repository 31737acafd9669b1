"""The demo scene for the gate tests: prepared (frames and the enrolled store) once per fixture scope,
and replay folders cut out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.config import load_config
from edge.demo_scene import Visit, load_scene, prepare_demo


def demo_root(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh folder with scene/ (the demo's walking sequence) and data/gate.db (its residents enrolled)."""
    root = factory.mktemp(name)
    (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    prepare_demo(load_config(root / "base.toml"), root / "scene")
    return root


def scene_visits(prepared: Path) -> list[Visit]:
    return load_scene(prepared / "scene")


def replay_folder(scene: Path, folder: Path, frames: list[int]) -> Path:
    """`folder` holding symlinks to these frames of the scene, renumbered from 0000.jpg in this order."""
    folder.mkdir(parents=True)
    for n, i in enumerate(frames):
        os.symlink(scene / f"{i:04d}.jpg", folder / f"{n:04d}.jpg")
    return folder
