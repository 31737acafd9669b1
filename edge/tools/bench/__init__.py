"""Benchmarks (not timed tests): ratios measured side by side in one run, on this machine.

  vision    our FaceEngine.analyze vs the plain OpenCV YuNet+SFace loop, alternating; the gate's Lane too
  gallery   1:N search at 10k / 100k / 1M identities vs a plain matvec, store load, RSS
  decision  first usable frame -> relay command on the real gate, walking sequence
  drain     outbox backlog of 100k events to a local Mosquitto vs a bare paho loop
  snapshot  signed whitelist snapshot apply for 10k / 100k persons
  memory    the running gate's RSS with 100k residents in its whitelist
  all       every one of them, each in a process of its own, and docs/performance.md written from the results

One module per benchmark (each `bench_<name>(...) -> list[str]`, the lines it reports), `options` for the
command line (shared by `gate bench` and scripts/bench.py), `runner` to run them, `report` for `all`.
This package's own import is light (no numpy, OpenCV, paho): `gate --help` lists the benchmarks from it.
"""

from __future__ import annotations

# name -> the report's section title, in the order `all` runs and reports them
BENCHMARKS: dict[str, str] = {
    "vision": "Face engine vs the plain OpenCV loop",
    "decision": "Decision latency on the real gate",
    "gallery": "1:N search",
    "drain": "Outbox drain",
    "snapshot": "Whitelist snapshot apply",
    "memory": "Memory of a gate with 100,000 residents",
}


def main(argv: list[str] | None = None) -> int:
    """`scripts/bench.py WHAT [options]` and `python -m edge.tools.bench`: parse, run, exit code."""
    from edge.tools.bench.runner import main as run_main

    return run_main(argv)
