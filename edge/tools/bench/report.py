"""docs/performance.md from one `all` run: the machine and library versions, then each benchmark's own
lines under its section title."""

from __future__ import annotations

import datetime
import os
import sqlite3
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edge.tools.bench import BENCHMARKS
from edge.tools.bench.common import machine
from edge.tools.procstat import cpu_model


def write_report(results: dict[str, list[str]], path: Path) -> None:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = ["# edge-gate performance", "",
             "Written by `scripts/bench.py all` (do not edit by hand; run it again). Every ratio was measured",
             "side by side in the same run on the same machine; absolute times are this machine's only.", "",
             f"- date: {datetime.date.today().isoformat()}",
             f"- machine: {cpu_model()}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM; {machine()}",
             f"- onnxruntime {_version('onnxruntime')}, numpy {_version('numpy')}, SQLite {sqlite3.sqlite_version}",
             ""]
    for key, title in BENCHMARKS.items():
        if key in results:
            parts += [f"## {title}", "", "```", *results[key], "```", ""]
    parts += hub_section(path.parent / "hub-performance.md")
    path.write_text("\n".join(parts))


def hub_section(hub_report: Path) -> list[str]:
    """The community hub's load figures (docs/hub-performance.md, from `scripts/hub_load.py` runs), carried
    into performance.md under one heading, their own headings one level down."""
    try:
        lines = hub_report.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    body = [("#" + line if line.startswith("## ") else line) for line in lines[1:]]
    return ["## The community hub under load (scripts/hub_load.py)", *body, ""]


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
