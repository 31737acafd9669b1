"""Fixtures of the gate suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.emulators.relay import ModbusSim, RelayTiming


@pytest.fixture
def board() -> Iterator[ModbusSim]:
    """A Modbus relay board simulator on a real pty (nobody walks through unless a test says so)."""
    sim = ModbusSim("no_pass", timing=RelayTiming())
    sim.start()
    yield sim
    sim.stop()
