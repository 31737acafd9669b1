"""scripts/bench.py is a script, not a timed test: these only prove its code paths run and that `all`
writes a report, on tiny sizes."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_script", ROOT / "scripts" / "bench.py")
assert spec and spec.loader
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_snapshot_bench_applies_and_reports() -> None:
    lines = bench.bench_snapshot((300,))
    assert re.search(r"300 persons \(1 chunks.*verify \+ apply .* \(300 templates\)", lines[1]), lines


def test_report_has_the_machine_and_every_section(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    bench.write_report({"gallery": ["gallery: x", "  10000 identities: ..."], "drain": ["drain: y"]}, out)
    text = out.read_text()
    assert "# edge-gate performance" in text and "cores" in text and "SQLite" in text
    assert "## 1:N search" in text and "## Outbox drain" in text and "## Decision latency" not in text
