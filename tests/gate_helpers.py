"""Helpers of the in-process gate tests (tests/test_gate_*.py): the demo scene prepared once per module,
replay folders of one person's walk (or the empty hallway), configs on a copy of the demo store, and a
supervisor loop that runs `Gate.check` as `gate run` does, until a condition holds."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import load_config
from edge.demo_scene import Visit, load_scene, prepare_demo
from edge.gate import Gate
from edge.lane import Outcome


def demo_root(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh folder with scene/ (the demo's walking sequence) and data/gate.db (its residents enrolled)."""
    root = factory.mktemp(name)
    (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    prepare_demo(load_config(root / "base.toml"), root / "scene")
    return root


def camera_of(prepared: Path, tmp: Path, who: str | None) -> Path:
    """A replay folder with one person's walk up to the gate and the empty hallway after it (replayed in
    a loop: the person comes back again and again); `who` None: the empty hallway only."""
    visits: list[Visit] = load_scene(prepared / "scene")
    folder = tmp / f"camera-{who}"
    folder.mkdir()
    if who is None:
        frames = [visits[0].last_frame + 1 + i for i in range(4)]
    else:
        v = next(v for v in visits if v.person_id == who)
        frames = list(range(v.first_frame, v.last_frame + 5))
    for n, i in enumerate(frames):
        os.symlink(prepared / "scene" / f"{i:04d}.jpg", folder / f"{n:04d}.jpg")
    return folder


def gate_config(prepared: Path, tmp: Path, camera: Path, *, fresh: bool = True, relay: str = 'kind = "lcus"',
                policy: str = "anti_passback_s = 0", extra: str = "") -> Path:
    """A config on a copy of the prepared demo store (`fresh` False: the store of the last run in `tmp`):
    folder camera at 20 fps, simulated thermal sensor and relay (`relay`: the [relay] lines after
    type = "sim"), no page."""
    data = tmp / "data"
    if fresh:
        data.mkdir()
        shutil.copyfile(prepared / "data" / "gate.db", data / "gate.db")
    path = tmp / "gate.toml"
    path.write_text(f'[gate]\nid = "south-1"\ndata_dir = "{data}"\n'
                    f'[camera]\ntype = "folder"\nsource = "{camera}"\nfps = 20\n'
                    f'[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n[relay]\ntype = "sim"\n{relay}\n'
                    f"[policy]\n{policy}\n[web]\nenabled = false\n{extra}\n")
    return path


def run_until(gate: Gate, done: Callable[[], bool], timeout: float = 30.0, every: float = 0.1) -> None:
    """Start the gate, run its supervisor pass every `every` s until `done()`, then shut it down."""
    gate.start()
    try:
        end = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < end, "timed out"
            gate.check()
            time.sleep(every)
    finally:
        gate.shutdown()


def codes(o: Outcome) -> set[str]:
    return {str(r["code"]) for r in o.event.reasons}
