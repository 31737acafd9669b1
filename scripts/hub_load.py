#!/usr/bin/env python3
"""Hub load: `scripts/hub_load.py --gates 200 --rate 5 --seconds 300 [--database postgresql] [--hubs 2]`;
the code is edge/tools/hub_load.py (`--help` lists every option)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.tools.hub_load import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
