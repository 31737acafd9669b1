"""Fixtures of the web suite: the demo scene prepared once and a started gate on a copy of its store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.scene import demo_root
from web_helpers import make_config, wait_for

from edge.config import load_config
from edge.gate import Gate


@pytest.fixture(scope="session")
def web_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "web")


@pytest.fixture(scope="module")
def live_gate(web_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    """A started gate replaying the demo scene (face crops on; the page not served: tests use TestClient)."""
    tmp = tmp_path_factory.mktemp("gate")
    cfg = make_config(web_prepared, tmp, web_prepared / "scene", "[store]\nsnapshots = true\n[web]\nenabled = false\n")
    gate = Gate(load_config(cfg))
    gate.start()
    try:
        assert wait_for(gate.alive, 20, gate)
        yield gate
    finally:
        gate.shutdown()
