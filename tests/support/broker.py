"""The one Mosquitto runner of the tests: `edge.tools.broker.Mosquitto` (a real broker on a free
loopback port, restartable on the same port), and a context manager that runs one for a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.tools.broker import Mosquitto

__all__ = ["Mosquitto", "running_broker"]


@contextmanager
def running_broker(workdir: Path, **options: object) -> Iterator[Mosquitto]:
    """A started Mosquitto (options as `Mosquitto` takes them: persistence, users, extra_config),
    stopped when the block ends."""
    broker = Mosquitto(workdir, **options)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
