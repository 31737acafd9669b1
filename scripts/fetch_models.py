#!/usr/bin/env python3
"""Fetch and verify the models in models/manifest.toml (same as `gate models fetch`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["models", "fetch", *sys.argv[1:]]))
