"""Fixtures of the deployment suite: a real, password-protected Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_helpers import Broker
from support.broker import running_broker


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto on a free port that accepts only user `gate` with password `s3cret`."""
    with running_broker(tmp_path / "broker", users={"gate": "s3cret"}) as mosquitto:
        yield Broker(mosquitto, "gate", "s3cret")
