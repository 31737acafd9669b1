"""Fixtures of the fault-injection suite: the demo scene with its enrolled store, prepared once, and
a real Mosquitto that keeps its sessions across a restart on the same port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.scene import demo_root

from edge.demo_scene import Visit
from edge.tools.broker import Mosquitto


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene/ (the walking sequence) and data/gate.db (five residents and an expired visitor enrolled)."""
    return demo_root(tmp_path_factory, "faults")


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
