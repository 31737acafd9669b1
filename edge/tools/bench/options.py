"""The benchmarks' command line, shared by `gate bench` and scripts/bench.py: which benchmark, and the
sizes each one runs at (defaults are the full runs docs/performance.md reports). Only argparse here."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.tools.bench import BENCHMARKS

DEFAULT_REPORT = Path(__file__).resolve().parents[3] / "docs" / "performance.md"
# the options a benchmark run passes on to each child process of `all` (everything but `what` and --report)
_PASSED_ON = ("frames", "rounds", "sizes", "queries", "events", "inflight", "persons", "seconds")


def sizes(text: str) -> tuple[int, ...]:
    """`--sizes 10000,100000`: positive integers, comma-separated (underscores allowed: 100_000)."""
    try:
        out = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sizes, "
                                         "e.g. 10000,100000") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more sizes >= 1, e.g. 10000,100000")
    return out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number > 0")
    return value


def add_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("what", choices=[*BENCHMARKS, "all"], help="the benchmark to run; all: every one, and the report")
    ap.add_argument("--frames", type=positive_int, default=60, help="vision: synthetic frames per round (default 60)")
    ap.add_argument("--rounds", type=positive_int, default=3, help="vision: rounds over the frames (default 3)")
    ap.add_argument("--sizes", type=sizes, default=None,
                    help="gallery: identities (default 10000,100000,1000000); snapshot: persons (default 10000,100000)")
    ap.add_argument("--queries", type=positive_int, default=300, help="gallery: searches per size (default 300)")
    ap.add_argument("--events", type=positive_int, default=100_000, help="drain: outbox backlog (default 100000)")
    ap.add_argument("--inflight", type=positive_int, default=20, help="drain: QoS 1 messages in flight (default 20)")
    ap.add_argument("--persons", type=positive_int, default=100_000,
                    help="memory: residents in the gate's whitelist (default 100000)")
    ap.add_argument("--seconds", type=positive_float, default=None,
                    help="decision: gate run time (default 30); memory: gate run time (default 20)")
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT,
                    help=f"where `all` writes its report (default {DEFAULT_REPORT})")
    return ap


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from edge.tools import bench

    return add_arguments(argparse.ArgumentParser(prog=prog, description=bench.__doc__,
                                                 formatter_class=argparse.RawDescriptionHelpFormatter))


def child_argv(args: argparse.Namespace, what: str) -> list[str]:
    """The command line that runs benchmark `what` alone with the options of this run."""
    argv = [what]
    for name in _PASSED_ON:
        value = getattr(args, name)
        if value is None:
            continue
        argv += [f"--{name}", ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return argv
