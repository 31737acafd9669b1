"""Where things are: the repository root the tests run the real commands from."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
MODELS = REPO / "models"
