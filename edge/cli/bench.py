"""`gate bench`: the benchmarks, measured side by side (`scripts/bench.py` is the same entry point)."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def cmd_bench(args: argparse.Namespace) -> int:

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
    sys.argv = [str(script), args.what, *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="run a benchmark from scripts/bench.py")
    bench.add_argument("what", choices=["vision", "gallery", "decision", "drain", "snapshot", "all"])
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
