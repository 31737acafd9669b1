#!/usr/bin/env python3
"""Benchmarks: `scripts/bench.py WHAT [options]` (vision, gallery, decision, drain, snapshot, memory, all),
the same as `gate bench`; the code is the edge.tools.bench package (`--help` lists every option)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.tools.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
