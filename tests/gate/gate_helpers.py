"""Helpers of the in-process gate tests (tests/gate/test_gate_*.py): replay folders of one person's walk
(or the empty hallway), configs on a copy of the demo store, and a supervisor loop that runs
`Gate.check` as `gate run` does, until a condition holds. The demo scene itself comes from
support.scene."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import gate_config as shared
from support.scene import demo_root, replay_folder, scene_visits
from support.wait import wait_until

from edge.gate import Gate
from edge.lane import Outcome

__all__ = ["camera_of", "codes", "demo_root", "gate_config", "run_until"]


def camera_of(prepared: Path, tmp: Path, who: str | None) -> Path:
    """A replay folder with one person's walk up to the gate and the empty hallway after it (replayed in
    a loop: the person comes back again and again); `who` None: the empty hallway only."""
    visits = scene_visits(prepared)
    if who is None:
        frames = [visits[0].last_frame + 1 + i for i in range(4)]
    else:
        v = next(v for v in visits if v.person_id == who)
        frames = list(range(v.first_frame, v.last_frame + 5))
    return replay_folder(prepared / "scene", tmp / f"camera-{who}", frames)


def gate_config(prepared: Path, tmp: Path, camera: Path, *, fresh: bool = True, relay: str = 'kind = "lcus"',
                policy: str = "anti_passback_s = 0", extra: str = "") -> Path:
    """A config on a copy of the prepared demo store (`fresh` False: the store of the last run in `tmp`):
    folder camera at 20 fps, simulated thermal sensor and relay (`relay`: the [relay] lines after
    type = "sim"), no page."""
    return shared.gate_config(tmp, camera, store_from=prepared, fresh=fresh, relay=f'type = "sim"\n{relay}',
                              policy=policy, extra=extra)


def run_until(gate: Gate, done: Callable[[], bool], timeout: float = 120.0, every: float = 0.1) -> None:
    """Start the gate, run its supervisor pass every `every` s until `done()`, then shut it down."""
    gate.start()
    try:
        def checked() -> bool:
            gate.check()
            return done()

        wait_until(checked, timeout, "the gate's run to reach its goal", every=every)
    finally:
        gate.shutdown()


def codes(o: Outcome) -> set[str]:
    return {str(r["code"]) for r in o.event.reasons}
