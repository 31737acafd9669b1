"""The supervisor in-process: a missing camera is alarmed and its recovery noted; a crashed vision thread
is restarted with a backoff and alarmed once; face snapshots are kept only when configured, and only
the face crop."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
from support.gate_config import gate_config
from support.scene import demo_root
from support.wait import poll_until

from edge.camera import Frame
from edge.config import load_config
from edge.gate import Gate
from edge.lane import Outcome
from edge.store import Store


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "sup")


def _config(prepared: Path, tmp: Path, camera_dir: Path, extra: str = "") -> Path:
    return gate_config(tmp, camera_dir, store_from=prepared, gate_id=None, reconnect_s=(0.1, 0.2), policy=None,
                       web_enabled=None, extra=extra)


def _until(gate: Gate, cond: Callable[[], object], timeout: float = 60.0) -> bool:
    """True once `cond()` holds, running the supervisor pass before each look (as `gate run` does)."""
    def checked() -> object:
        gate.check()
        return cond()

    return poll_until(checked, timeout, every=0.2)


@pytest.mark.slow
def test_camera_fault_is_alarmed_and_recovery_noted(prepared: Path, tmp_path: Path) -> None:
    camera_dir = tmp_path / "camera"  # not there yet: the camera is unplugged
    gate = Gate(load_config(_config(prepared, tmp_path, camera_dir)))
    gate.start()
    try:
        assert _until(gate, lambda: "camera" in gate.health and not gate.health["camera"].ok)
        shutil.copytree(prepared / "scene", camera_dir)  # plugged in
        assert _until(gate, lambda: gate.health["camera"].ok)
    finally:
        gate.shutdown()
    with Store.open(tmp_path / "data" / "gate.db") as store:
        kinds = [a.kind for a in store.alarms(limit=100)]
    assert "camera_fault" in kinds and "camera_recovered" in kinds


@pytest.mark.slow
@pytest.mark.parametrize("snapshots", [False, True])
def test_face_snapshots_only_when_configured(prepared: Path, tmp_path: Path, snapshots: bool) -> None:
    camera_dir = tmp_path / "camera"
    camera_dir.mkdir()
    for i in range(24):  # Tom Hanks walking up
        shutil.copyfile(prepared / "scene" / f"{i:04d}.jpg", camera_dir / f"{i:04d}.jpg")
    outcomes: list[Outcome] = []
    extra = f"[store]\nsnapshots = {'true' if snapshots else 'false'}\n"
    gate = Gate(load_config(_config(prepared, tmp_path, camera_dir, extra)), on_outcome=outcomes.append)
    gate.start()
    try:
        assert _until(gate, lambda: bool(outcomes))
    finally:
        gate.shutdown()
    with Store.open(tmp_path / "data" / "gate.db", snapshots=snapshots) as store:
        jpeg = store.get_snapshot(outcomes[0].event.event_id)
    if not snapshots:
        assert jpeg is None
    else:
        import cv2
        import numpy as np

        assert jpeg is not None
        crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape[0] < 480 and crop.shape[1] < 640  # the face, not the frame


@pytest.mark.slow
def test_manual_open_health_preview_and_listeners(prepared: Path, tmp_path: Path) -> None:
    camera_dir = tmp_path / "camera"
    shutil.copytree(prepared / "scene", camera_dir)
    gate = Gate(load_config(_config(prepared, tmp_path, camera_dir)))
    seen: list[tuple[str, dict[str, object]]] = []
    unsubscribe = gate.subscribe(lambda kind, payload: seen.append((kind, payload)))
    gate.start()
    try:
        assert _until(gate, lambda: any(k == "decision" for k, _ in seen))
        with pytest.raises(ValueError, match="reason"):
            gate.manual_open("guard-li", "   ")
        event = gate.manual_open("guard-li", "delivery van, driver known")
        assert gate.relay.state or gate.relay.pulsing
        health = gate.health_snapshot()
        assert health["camera"]["ok"] and health["whitelist"]["persons"] == 6  # type: ignore[index]
        jpeg = gate.preview_jpeg()
        assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"
        unsubscribe()
    finally:
        gate.shutdown()
    assert any(k == "decision" and p["event_id"] == event.event_id for k, p in seen)
    with Store.open(tmp_path / "data" / "gate.db") as store:
        stored = store.get_event(event.event_id)
        audit = store.audit_entries(limit=10)
    assert stored is not None and stored.reasons[0]["code"] == "manual_open"
    assert any(a.action == "manual_open" and a.actor == "guard-li" for a in audit)


class Crash(BaseException):
    """What kills a thread outright (not an Exception the vision loop catches per frame)."""


@pytest.mark.slow
def test_a_crashed_vision_thread_is_restarted_with_backoff_and_alarmed(prepared: Path, tmp_path: Path) -> None:
    camera_dir = tmp_path / "camera"
    shutil.copytree(prepared / "scene", camera_dir)
    extra = "[web]\nenabled = false\n[supervisor]\nrestart_min_s = 0.2\nrestart_max_s = 5.0\n"
    gate = Gate(load_config(_config(prepared, tmp_path, camera_dir, extra)))
    alarms: list[dict[str, object]] = []
    gate.subscribe(lambda kind, payload: alarms.append(payload) if kind == "alarm" else None)
    real_process = gate.lane.process
    crashes = 0

    def crashing(frame: Frame) -> list[Outcome]:  # the first three frames kill the thread
        nonlocal crashes
        if crashes < 3:
            crashes += 1
            raise Crash(f"crash {crashes}")
        return real_process(frame)

    gate.lane.process = crashing  # type: ignore[method-assign]
    starts: list[float] = []
    thread = None
    gate.start()
    try:
        def restarted_and_recovered() -> bool:
            nonlocal thread
            if gate._vision_thread is not thread:
                thread = gate._vision_thread
                starts.append(time.monotonic())
            return any(a["kind"] == "vision_recovered" for a in alarms)
        end = time.monotonic() + 60
        while not restarted_and_recovered():
            assert time.monotonic() < end, alarms
            gate.check()
            time.sleep(0.05)
        while gate.lane.decisions == 0:  # and the restarted loop decides again
            assert time.monotonic() < end, "no decision after the restart"
            gate.check()
            time.sleep(0.05)
        assert gate._vision_thread is not None and gate._vision_thread.is_alive()
    finally:
        gate.shutdown()
    assert crashes == 3 and len(starts) == 4  # the first start and three restarts
    gaps = [b - a for a, b in pairwise(starts)]
    # each restart waited at least its backoff: 0.2, 0.4, 0.8 s (plus the time to crash and to notice,
    # which on a busy machine may be longer than the backoff itself: no upper bound)
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8, gaps
    faults = [a for a in alarms if a["kind"] == "vision_fault"]
    assert len(faults) == 1  # one alarm for the outage, not one per crash
    assert faults[0]["details"] == {"part": "vision", "restart_in_s": 0.2, "restarts": 0}
    assert "Crash: crash 1" in str(faults[0]["message"])
    assert gate.backoff["vision"].restarts == 3
    with Store.open(tmp_path / "data" / "gate.db") as store:
        kinds = [a.kind for a in store.alarms(limit=100)]
    assert "vision_fault" in kinds and "vision_recovered" in kinds
