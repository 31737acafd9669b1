"""A frame whose checksum is right but which carries the module's error word (0x7FFF = 327.67 C), sent by
the simulator through a real pty and read by the real driver through pyserial: counted as not a
measurement, logged once (rate-limited), never delivered as a reading, and the next good frame is."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from support.wait import wait_until

from drivers.emulators.thermal import ERROR_C, ThermalSim, Timing
from drivers.thermal import serial_sensor
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config
from drivers.thermal.reading import Reading
from drivers.thermal.serial_sensor import SerialThermalSensor

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "stale_after_s": 1.0, "reopen_after_s": 10.0}
# what a good frame of the simulated scene gives, and what the driver says about the error frame
KINDS = {"gy_mcu90614": ((34.0, 35.2), "object word 0x7FFF (327.67 C): the module's error value"),
         "gy_mcu90640": ((36.0, 37.0), "1 pixel(s) outside the MLX90640's -40..300 C")}


@pytest.fixture(params=sorted(KINDS))
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[str, ThermalSim, SerialThermalSensor]]:
    kind = str(request.param)
    sim = ThermalSim(kind, rate_hz=20.0, seed=3)
    sim.start()
    cfg = {**FAST, "port": sim.path}
    drv: SerialThermalSensor = (GyMcu90614(GyMcu90614Config.model_validate(cfg)) if kind == "gy_mcu90614"
                                else GyMcu90640(GyMcu90640Config.model_validate(cfg)))
    drv.start()
    try:
        yield kind, sim, drv
    finally:
        drv.close()
        sim.stop()


def _readings_until(drv: SerialThermalSensor, done: object, last: float | None) -> list[Reading]:
    """Every reading the driver delivers (each newer than the one before) until `done()` holds."""
    seen: list[Reading] = []
    assert callable(done)
    deadline = time.monotonic() + 30.0  # a limit for a broken run, not the expected time
    while not done():
        assert time.monotonic() < deadline, f"timed out; readings seen: {[r.object_c for r in seen][-5:]}"
        r = drv.wait(30.0, newer_than=last)
        assert r is not None, "the driver stopped delivering readings"
        seen.append(r)
        last = r.t
    return seen


def test_error_word_frame_is_counted_logged_once_and_never_delivered(
        rig: tuple[str, ThermalSim, SerialThermalSensor], caplog: pytest.LogCaptureFixture) -> None:
    kind, sim, drv = rig
    (lo, hi), why = KINDS[kind]
    caplog.set_level(logging.WARNING, logger=serial_sensor.__name__)
    first = drv.wait(30.0)
    assert first is not None and lo < first.object_c < hi

    sim.queue_error_frames(1)
    seen = _readings_until(drv, lambda: drv.stats.implausible >= 1, first.t)
    counted_at = time.monotonic()  # the error frame has been refused by now
    # the next good frame after the refused one is delivered as usual
    after = drv.wait(30.0, newer_than=counted_at)
    assert after is not None and lo < after.object_c < hi
    seen.append(after)
    st = drv.stats
    assert sim.log.error_frames == 1 and st.implausible == 1 and st.checksum_failures == 0
    assert st.last_refused is not None and st.last_refused.startswith(why)
    assert all(lo < r.object_c < hi for r in seen), [r.object_c for r in seen]  # never 327.67
    assert all(r.object_c != pytest.approx(ERROR_C) for r in (drv.read(), *seen) if r is not None)
    lines = [r.getMessage() for r in caplog.records if r.name == serial_sensor.__name__]
    assert len(lines) == 1 and "1 not a measurement" in lines[0] and why in lines[0], lines

    # more of them within the minute: counted, still not delivered, but no second log line yet
    sim.queue_error_frames(3)
    seen = _readings_until(drv, lambda: drv.stats.implausible >= 4, after.t)
    assert all(lo < r.object_c < hi for r in seen)
    assert drv.stats.implausible == 4 and sim.log.error_frames == 4
    assert len([r for r in caplog.records if r.name == serial_sensor.__name__]) == 1


def test_error_value_scenario_streams_error_frames_the_driver_refuses() -> None:
    sim = ThermalSim("gy_mcu90614", "error_value", rate_hz=40.0, timing=Timing(corrupt_every=2))
    sim.start()
    drv = GyMcu90614(GyMcu90614Config.model_validate({**FAST, "port": sim.path}))
    drv.start()
    try:
        wait_until(lambda: drv.stats.implausible >= 3 and drv.stats.frames_ok >= 3, what="error and good frames")
        r = drv.read()
        assert r is not None and 34.0 < r.object_c < 35.2
        assert drv.stats.frames_ok <= sim.log.frames - sim.log.error_frames  # an error frame is never a reading
    finally:
        drv.close()
        sim.stop()
    with pytest.raises(ValueError, match="no error word"):
        ThermalSim("ascii_line", "error_value")
