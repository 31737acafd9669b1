"""Fixtures of the sync suite: a real Mosquitto on a free port, a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.store import Store
from edge.tools.broker import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running mosquitto (no persistence); `broker.stop()` / `broker.start()` restart it on the same port."""
    b = Mosquitto(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "gate.sqlite")
    try:
        yield s
    finally:
        s.close()
