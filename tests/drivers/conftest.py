"""Fixtures of the drivers suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.emulators.relay import LcusSim, ModbusSim
from drivers.relay.worker import BaseRelay


@pytest.fixture
def cleanup() -> Iterator[list[object]]:
    """Relays and board simulators a test started, closed and stopped in reverse order at its end."""
    items: list[object] = []
    yield items
    for item in reversed(items):
        if isinstance(item, BaseRelay):
            item.close()
        elif isinstance(item, LcusSim | ModbusSim):
            item.stop()
