"""Fixtures of the fault-injection suite: the demo scene with its enrolled store, prepared once, and
a real Mosquitto that keeps its sessions across a restart on the same port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import load_config
from edge.demo_scene import Visit, prepare_demo
from edge.sync.bench import Mosquitto


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene/ (the walking sequence) and data/gate.db (five residents and an expired visitor enrolled)."""
    root = tmp_path_factory.mktemp("faults")
    (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    prepare_demo(load_config(root / "base.toml"), root / "scene")
    return root


@pytest.fixture(scope="session")
def visits(prepared: Path) -> list[Visit]:
    from edge.demo_scene import load_scene

    return load_scene(prepared / "scene")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto on a free port, persistent: a clean stop saves the server's session and its queue, so the
    only messages that can go missing across a restart are ones the gate itself failed to resend."""
    b = Mosquitto(tmp_path / "broker", persistence=True)
    b.start()
    try:
        yield b
    finally:
        b.stop()
