"""The drain benchmark on a 5,000-event backlog (the full 100,000 runs from `gate bench drain`)."""

from __future__ import annotations

from pathlib import Path

from edge.tools.bench.drain import drain_backlog


def test_drain_benchmark_smoke(tmp_path: Path) -> None:
    result = drain_backlog(5_000, workdir=tmp_path)
    assert result.events == 5_000
    assert result.rate >= 1_000, f"{result.rate:.0f} events/s"
