"""What the command groups share: the `--config`/`--data-dir` options and loading the config they name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.config import GateConfig


def load(args: argparse.Namespace) -> GateConfig:
    from edge.config import load_config

    cfg = load_config(getattr(args, "config", None))
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        cfg.gate.data_dir = Path(data_dir).resolve()
    return cfg


def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
    sp.add_argument("--data-dir", help="override [gate] data_dir")
    return sp
