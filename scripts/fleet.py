#!/usr/bin/env python3
"""Fleet load: `scripts/fleet.py --gates 200 --rate 5 --seconds 300 [...]`, N simulated gates against one
MQTT broker; the code is the edge.tools.fleet package (`--help` lists every option)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.tools.fleet import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
