"""The benchmarks (edge.tools.bench) are not timed tests: these prove their code paths run on tiny sizes,
that `all` writes a report, and that `gate bench` / scripts/bench.py offer every one of them, run one
through the `gate` command, refuse bad options in one line, and keep `gate --help` light."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.tools.bench import BENCHMARKS
from edge.tools.bench.options import build_parser, child_argv
from edge.tools.bench.report import write_report
from edge.tools.bench.snapshot import bench_snapshot
from edge.tools.stats import percentile, summary

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "cv2", "onnxruntime", "paho", "fastapi")


def _gate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


def test_snapshot_bench_applies_and_reports() -> None:
    lines = bench_snapshot((300,))
    assert re.search(r"300 persons \(1 chunks.*verify \+ apply .* \(300 templates\)", lines[1]), lines


def test_report_has_the_machine_and_every_section(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    write_report({"gallery": ["gallery: x", "  10000 identities: ..."], "drain": ["drain: y"]}, out)
    text = out.read_text()
    assert "# edge-gate performance" in text and "cores" in text and "SQLite" in text
    assert "## 1:N search" in text and "## Outbox drain" in text and "## Decision latency" not in text


def test_percentiles_match_numpy() -> None:
    rng = random.Random(4)
    for n in (1, 2, 7, 100):
        values = [rng.uniform(0, 50) for _ in range(n)]
        for q in (0, 50, 95, 99, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert summary([100.0, 200.0, 300.0]) == {"n": 3, "p50": 200.0, "p95": 290.0, "p99": 298.0, "max": 300.0,
                                               "over_150": 2}
    assert summary([]) == {"n": 0}


def test_all_passes_this_runs_sizes_on_to_each_benchmark() -> None:
    args = build_parser().parse_args(["all", "--sizes", "300,4000", "--events", "500", "--seconds", "2.5"])
    again = build_parser().parse_args(child_argv(args, "snapshot"))
    assert again.what == "snapshot"
    assert (again.sizes, again.events, again.seconds, again.frames) == ((300, 4000), 500, 2.5, 60)


def test_gate_bench_help_lists_every_benchmark_and_stays_light() -> None:
    proc = _gate("bench", "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    choices = re.search(r"\{([a-z,]+)\}", proc.stdout)
    assert choices and choices.group(1).split(",") == [*BENCHMARKS, "all"], proc.stdout
    assert "memory" in choices.group(1).split(",")
    assert "--sizes" in proc.stdout and "--persons" in proc.stdout
    # the bench parser (what edge.cli.bench imports) brings in none of the heavy libraries; `gate --help`
    # none but numpy (which edge.cli.admin's import of edge.protocol.messages brings in, outside bench)
    code = ("import json, sys\n"
            "from edge.tools.bench.options import build_parser as bench_parser\n"
            "try:\n    bench_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            f"bench_only = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "from edge.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([bench_only, [m for m in {HEAVY!r} if m in sys.modules]]))\n")
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                           check=False)
    assert light.returncode == 0, light.stderr
    bench_only, gate_help = json.loads(light.stdout.splitlines()[-1])
    assert bench_only == []
    assert set(gate_help) <= {"numpy"}, gate_help


@pytest.mark.slow
def test_gate_bench_gallery_runs_and_prints_its_ratio() -> None:
    proc = _gate("bench", "gallery", "--sizes", "300", "--queries", "20")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("gallery: 1:N search"), proc.stdout
    line = re.search(r"^\s+300 identities: search p50 .*ratio (\d+\.\d+)x\); store load \d+\.\d+ s", proc.stdout,
                     re.MULTILINE)
    assert line and float(line.group(1)) > 0, proc.stdout


@pytest.mark.parametrize("args", [["gallery", "--sizes", "ten"], ["gallery", "--sizes", "0"], ["speed"],
                                  ["drain", "--events", "-5"], ["memory", "--seconds", "inf"]])
def test_bad_bench_options_are_refused_in_one_line(args: list[str]) -> None:
    for proc in (_gate("bench", *args, timeout=120),
                 subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), *args], capture_output=True,
                                text=True, timeout=120, check=False)):
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_scripts_bench_is_the_same_entry_point() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--help"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "{" + ",".join([*BENCHMARKS, "all"]) + "}" in proc.stdout and "--report" in proc.stdout
