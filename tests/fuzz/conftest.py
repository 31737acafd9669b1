"""Fixtures of the fuzz suite: the web suite's helpers and its demo-scene gate, reused by import.

`tests/web` and `tests/sync` go on sys.path so their helper modules (`web_helpers`, `sync_helpers`)
import as they do in their own suites; the web suite's `web_prepared` and `live_gate` fixtures are
loaded from its conftest under another module name and re-exported here, not copied.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for helper_dir in (TESTS / "web", TESTS / "sync"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))


def _load_web_conftest() -> object:
    spec = importlib.util.spec_from_file_location("fuzz_web_conftest", TESTS / "web" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_web = _load_web_conftest()
web_prepared = _web.web_prepared  # type: ignore[attr-defined]
live_gate = _web.live_gate  # type: ignore[attr-defined]
