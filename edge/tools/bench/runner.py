"""Run the benchmark a command line names (`gate bench`, scripts/bench.py, `python -m edge.tools.bench`):
one in this process, or `all`, each in a process of its own (its max RSS is its own, not the largest so
far) and then the report. A failing benchmark is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable

from edge.tools.bench import BENCHMARKS
from edge.tools.bench.options import build_parser, child_argv


def _runs(args: argparse.Namespace) -> dict[str, Callable[[], list[str]]]:
    """name -> the call that runs it with this command line's sizes (heavy imports only when it runs)."""

    def vision() -> list[str]:
        from edge.tools.bench.vision import bench_pipeline, bench_vision

        return bench_vision(args.frames, args.rounds) + bench_pipeline()

    def decision() -> list[str]:
        from edge.tools.bench.decision import DEFAULT_SECONDS, bench_decision

        return bench_decision(args.seconds or DEFAULT_SECONDS)

    def gallery() -> list[str]:
        from edge.tools.bench.gallery import DEFAULT_SIZES, bench_gallery

        return bench_gallery(args.sizes or DEFAULT_SIZES, args.queries)

    def drain() -> list[str]:
        from edge.tools.bench.drain import bench_drain

        return bench_drain(args.events, args.inflight)

    def snapshot() -> list[str]:
        from edge.tools.bench.snapshot import DEFAULT_SIZES, bench_snapshot

        return bench_snapshot(args.sizes or DEFAULT_SIZES)

    def memory() -> list[str]:
        from edge.tools.bench.memory import DEFAULT_SECONDS, bench_memory

        return bench_memory(args.persons, args.seconds or DEFAULT_SECONDS)

    runs = {"vision": vision, "decision": decision, "gallery": gallery, "drain": drain, "snapshot": snapshot,
            "memory": memory}
    assert list(runs) == list(BENCHMARKS), "every benchmark has a run, in the report's order"
    return runs


def _run_alone(key: str, args: argparse.Namespace) -> list[str]:
    from edge.tools.bench.common import module_command

    argv, env = module_command("edge.tools.bench", *child_argv(args, key))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise RuntimeError(f"bench {key} failed (exit {proc.returncode})")
    return proc.stdout.splitlines()


def run(args: argparse.Namespace) -> int:
    """Run what `args` (from options.add_arguments) names and print its lines; 0, or 1 when it failed."""
    results: dict[str, list[str]] = {}
    try:
        for key, bench in _runs(args).items():
            if args.what == key:
                results[key] = bench()
            elif args.what == "all":
                results[key] = _run_alone(key, args)
            else:
                continue
            print("\n".join(results[key]), flush=True)
        if args.what == "all":
            from edge.tools.bench.report import write_report

            write_report(results, args.report)
            print(f"wrote {args.report}")
    except (RuntimeError, TimeoutError, ConnectionError, OSError) as exc:
        print(f"bench {args.what} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(prog="bench").parse_args(argv))
