"""`gate bench WHAT [options]`: the benchmarks of edge.tools.bench, measured side by side (scripts/bench.py
is the same entry point). The parser is light; the benchmark code is imported only when one runs."""

from __future__ import annotations

import argparse

from edge.tools import bench as bench_package
from edge.tools.bench.options import add_arguments


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.tools.bench.runner import run

    return run(args)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="run a benchmark (ratios measured side by side; all writes the report)",
                           description=bench_package.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(bench)
    bench.set_defaults(func=cmd_bench, shared_output=True)  # the reports (docs/performance.md)
