"""Fault: the thermal sensor fails while the real gate runs on the demo scene: its port closes (the
simulated module is unplugged), it goes silent, or it spews garbage. The gate raises sensor_fault,
keeps deciding per its sensor fault policy, never takes a temperature from bytes that are not a good
frame, counts the checksum failures, and notes the recovery."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from fault_helpers import LiveGate, check_store, codes, gate_config
from support.wait import wait_until

from drivers.emulators.thermal import Scene, ThermalSim, Timing
from drivers.thermal.gy_mcu90614 import encode_frame
from edge.lane import Outcome

SKIN_C = Scene().skin_c  # what the simulated module truly measures (plus 0.05 C noise)
FALSE_C = 41.0  # what the garbage's broken frames would say if the driver believed them


class Garbage:
    """A failing line: random bytes and broken frames (a good header, a plausible fever, a bad checksum)
    written to the module's pty while the module itself sends nothing."""

    def __init__(self, sim: ThermalSim, seed: int = 8) -> None:
        self.sim = sim
        self.rng = random.Random(seed)
        self.broken_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="garbage", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(5, 60)))
            frame = bytearray(encode_frame(FALSE_C, 24.0))
            frame[-1] ^= 1 << self.rng.randrange(8)
            if self.sim.write(junk + bytes(frame)):
                self.broken_frames += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def silence(sim: ThermalSim) -> None:
    """The module hangs: it stops sending and answers no command (until resume)."""
    sim.timing = Timing(unplug_after_s=0.0, unplug_for_s=3600.0)
    sim.scenario = "hang"


def resume(sim: ThermalSim) -> None:
    sim.scenario = "normal"


def measured(o: Outcome) -> bool:
    return o.event.decision == "grant" and bool((o.event.temperature or {}).get("valid"))


def resident(o: Outcome) -> bool:
    return (o.event.person_id or "").startswith("R")  # not a stranger, not the expired visitor


@pytest.mark.fault
@pytest.mark.parametrize("fault,policy", [("unplugged", "deny"), ("silent", "allow_and_alarm"),
                                          ("garbage", "deny"), ("garbage", "allow_and_alarm")])
def test_thermal_sensor_fault(prepared: Path, tmp_path: Path, fault: str, policy: str) -> None:
    config = gate_config(prepared, tmp_path, policy=f'sensor_fault_policy = "{policy}"')
    garbage: Garbage | None = None
    with LiveGate(config) as live:
        thermal = live.gate.thermal
        assert thermal is not None
        sim: ThermalSim = thermal.sim  # type: ignore[attr-defined]
        live.wait_decided(0, "a resident let in with a measured temperature", where=measured)
        failures = thermal.stats.checksum_failures
        working = time.monotonic()  # (a supervisor pass before the very first reading may alarm: not counted)

        broken = time.monotonic()
        if fault == "unplugged":
            sim.unplug()
        elif fault == "silent":
            silence(sim)
        else:
            silence(sim)
            garbage = Garbage(sim)
            garbage.start()
        alarm = live.wait_alarm("sensor_fault", broken, part="thermal", timeout=20)
        assert alarm["severity"] == "high"
        health = live.gate.health_snapshot()["thermal"]
        assert health is not None and not health["ok"]  # type: ignore[index]
        # the last good reading is too old by now (max_age_s 2 s < the supervisor's 3 s): no value at all
        assert thermal.read() is None
        stale = time.monotonic()
        during = live.wait_decided(stale, "residents decided while the sensor is out", where=resident, n=2)
        for o in during:
            assert "sensor_fault" in codes(o), o.event.reasons
            assert o.event.temperature is None
            assert o.event.decision == ("deny" if policy == "deny" else "grant"), o.event.reasons
            assert any(a["kind"] == "sensor_fault" for a in o.event.alarms)
        if garbage is not None:
            garbage.stop()
            assert garbage.broken_frames > 50
            # every broken frame written is refused; the last ones may still be on the line: wait for them
            wait_until(lambda: thermal.stats.checksum_failures - failures >= garbage.broken_frames, 30,
                       f"the {garbage.broken_frames} broken frames refused")
            assert live.gate.health_snapshot()["thermal"]["checksum_failures"] > failures  # type: ignore[index]

        back = time.monotonic()
        if fault == "unplugged":
            sim.plug()
        else:
            resume(sim)
        live.wait_alarm("thermal_recovered", back, part="thermal", timeout=20)
        live.wait_decided(back, "a resident let in with a measured temperature again", where=measured)
        assert len(live.alarmed("sensor_fault", working, part="thermal")) == 1  # one per outage, no flapping
    stored = check_store(live.db, live.event_ids(), ["sensor_fault", "thermal_recovered"])
    # no false temperature: every temperature the gate recorded is one the module measured
    temps = [e.temperature for e in stored if e.temperature is not None]
    assert temps and all(abs(float(t["raw_c"]) - SKIN_C) < 0.5 for t in temps), temps
