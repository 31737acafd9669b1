"""Fault: the camera vanishes and comes back (the replay folder removed, or emptied, then restored),
while the real gate runs on the demo scene."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fault_helpers import LiveGate, check_store, gate_config, wait_until


@pytest.mark.fault
def test_camera_vanishes_and_returns(prepared: Path, tmp_path: Path) -> None:
    camera = tmp_path / "camera"
    shutil.copytree(prepared / "scene", camera)
    frames = sorted(camera.glob("*.jpg"))
    aside = tmp_path / "aside"
    with LiveGate(gate_config(prepared, tmp_path, camera_dir=camera, fps=40)) as live:
        live.wait_decided(0, "a first decision")
        # a whole lap of the replay: every frame has been read once (and is cached by the replay source)
        wait_until(lambda: live.gate.camera.health().frames > len(frames), 30, "a full lap of the replay")
        lap = time.monotonic()

        for how in ("removed", "emptied"):
            gone = time.monotonic()
            if how == "removed":  # the device node disappears
                camera.rename(aside)
            else:  # the folder stays, its frames go
                aside.mkdir()
                for f in frames:
                    f.rename(aside / f.name)
            alarm = live.wait_alarm("camera_fault", gone, timeout=20)
            assert alarm["details"]["part"] == "camera" and alarm["severity"] == "high"
            assert not live.gate.health["camera"].ok
            assert not live.gate.health_snapshot()["camera"]["ok"]  # type: ignore[index]

            back = time.monotonic()
            if how == "removed":
                aside.rename(camera)
            else:
                for f in frames:
                    (aside / f.name).rename(f)
                aside.rmdir()
            live.wait_alarm("camera_recovered", back, timeout=20)
            live.wait_decided(back, f"a resident let in after the camera was {how} and restored",
                              where=lambda o: o.event.decision == "grant")
        # one alarm per outage and one per recovery: no flapping, no repeats
        assert len(live.alarmed("camera_fault", lap)) == len(live.alarmed("camera_recovered", lap)) == 2
    stored = check_store(live.db, live.event_ids(), ["camera_fault", "camera_recovered"])
    assert len(stored) == len(live.outcomes)  # and nothing recorded that was not decided
