"""Thermal drivers against the simulators over real pseudo-terminals, through real pyserial."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import serial
from pydantic import TypeAdapter, ValidationError
from support.wait import poll_until as wait_until

from drivers.emulators.pty import PtyDevice
from drivers.emulators.thermal import Scene, ThermalSim, Timing, eye_geometry
from drivers.thermal import ThermalConfig, ThermalSimConfig, make_thermal
from drivers.thermal.ascii_line import AsciiLine, AsciiLineConfig
from drivers.thermal.gy_mcu90614 import CMD_CONTINUOUS, CMD_QUERY, GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import CMD_CONTINUOUS as CMD_CONT_40
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config, baud_command, frame_rate_command
from drivers.thermal.serial_sensor import SerialThermalSensor

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "stale_after_s": 0.3, "reopen_after_s": 0.8}
TIMING = Timing(unplug_after_s=0.4, unplug_for_s=0.3, dropout_period_s=0.6, dropout_s=0.3, corrupt_every=3)


@pytest.fixture
def rig() -> Iterator[Callable[..., tuple[ThermalSim, SerialThermalSensor]]]:
    """Start a simulator and the real driver for its kind on its pty; both are stopped afterwards."""
    made: list[tuple[ThermalSim, SerialThermalSensor]] = []

    def make(kind: str, scenario: str = "normal", rate_hz: float = 40.0, scene: Scene | None = None,
             sim_baud: int | None = None, **driver: object) -> tuple[ThermalSim, SerialThermalSensor]:
        sim = ThermalSim(kind, scenario, rate_hz=rate_hz, timing=TIMING, scene=scene, seed=1, baud=sim_baud)
        sim.start()
        cfg = {**FAST, "port": sim.path, **driver}
        drv: SerialThermalSensor
        if kind == "gy_mcu90614":
            drv = GyMcu90614(GyMcu90614Config.model_validate(cfg))
        elif kind == "gy_mcu90640":
            drv = GyMcu90640(GyMcu90640Config.model_validate(cfg))
        else:
            drv = AsciiLine(AsciiLineConfig.model_validate(cfg))
        drv.start()
        made.append((sim, drv))
        return sim, drv

    yield make
    for sim, drv in made:
        drv.close()
        sim.stop()


def test_sim_is_a_real_tty() -> None:
    sim = ThermalSim("gy_mcu90614", rate_hz=50).start()
    try:
        assert os.path.realpath(sim.path).startswith("/dev/pts/")
        fd = os.open(sim.path, os.O_RDWR | os.O_NOCTTY)
        try:
            assert os.isatty(fd)
        finally:
            os.close(fd)
        with serial.Serial(sim.path, 9600, timeout=1) as ser:
            ser.write(CMD_QUERY)
            frame = ser.read(9)
        assert frame[:4] == bytes.fromhex("5A5A4504") and sum(frame[:8]) & 0xFF == frame[8]
        assert wait_until(lambda: CMD_QUERY in sim.log.commands)
        assert bytes(sim.received).endswith(CMD_QUERY)
    finally:
        sim.stop()


@pytest.mark.parametrize("kind", ["gy_mcu90614", "gy_mcu90640", "ascii_line"])
def test_normal_readings(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]], kind: str) -> None:
    sim, drv = rig(kind)
    readings = []
    last = None
    for _ in range(5):
        r = drv.wait(3.0, newer_than=last)
        assert r is not None
        readings.append(r)
        last = r.t
    assert drv.read() is not None
    if kind == "gy_mcu90640":
        assert all(r.frame is not None and r.frame.shape == (24, 32) for r in readings)
        assert all(36.0 < r.object_c < 37.0 for r in readings)  # the frame maximum: the inner canthus
    else:
        assert all(34.0 < r.object_c < 35.2 for r in readings)
    if kind == "ascii_line":
        assert all(np.isnan(r.ambient_c) for r in readings)
    else:
        assert all(r.ambient_c == pytest.approx(24.0) for r in readings)
        assert sim.log.commands[0] in (CMD_CONTINUOUS, CMD_CONT_40)
    st = drv.stats
    assert st.connected and st.checksum_failures == 0 and st.frames_ok >= 5
    assert st.last_good_age_s is not None and st.last_good_age_s < 5.0  # fresh, with room for a busy CPU


def test_query_mode(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    sim, drv = rig("gy_mcu90614", mode="query", query_interval_s=0.02)
    assert drv.wait(3.0) is not None
    assert sim.log.commands and set(sim.log.commands) == {CMD_QUERY}
    assert not sim.streaming


def test_90640_frame_rate_command_sent(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    sim, drv = rig("gy_mcu90640", frame_rate_code=4)
    assert drv.wait(3.0) is not None
    assert sim.log.commands[:2] == [frame_rate_command(4), CMD_CONT_40]
    assert sim.rate_hz == 8.0


def test_90640_baud_command_bytes() -> None:
    assert baud_command(115200) == bytes.fromhex("A51501BB")
    assert baud_command(460800) == bytes.fromhex("A51502BC")
    with pytest.raises(ValueError, match="115200 or 460800"):
        baud_command(9600)


def test_90640_set_module_baud_over_the_pty(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    sim, drv = rig("gy_mcu90640")
    assert isinstance(drv, GyMcu90640)
    assert drv.wait(3.0) is not None
    assert sim.line_baud() == 115200 == drv.baud and sim.baud == 115200
    assert drv.set_module_baud(460800)
    assert baud_command(460800) in sim.log.commands and sim.log.baud_changes == [460800]
    assert sim.baud == 460800  # the module speaks the new speed ...
    assert sim.line_baud() == 460800 == drv.baud  # ... and the driver reopened its port at it
    last = drv.wait(3.0)
    assert last is not None and last.frame is not None and 36.0 < last.object_c < 37.0
    assert drv.stats.reconnects == 0  # a deliberate reopen, not a lost port
    assert drv.set_module_baud(115200)  # and back
    assert sim.baud == 115200 == sim.line_baud() and drv.wait(3.0, newer_than=last.t) is not None


def test_90640_wrong_speed_gets_nothing(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    # what a driver that did not reopen at the new speed would see: the module hears junk and says junk
    sim, drv = rig("gy_mcu90640", sim_baud=460800, baud=115200)  # the module was switched earlier
    assert drv.wait(1.0) is None
    assert sim.log.wrong_speed_reads > 0 and not sim.streaming  # the start command was not understood
    sim.streaming = True  # as if it streamed anyway: junk at the driver's speed, never a frame
    assert wait_until(lambda: sim.log.wrong_speed_frames >= 3)
    assert drv.read() is None and drv.stats.frames_ok == 0 and drv.stats.bytes_skipped > 0
    _, right = rig("gy_mcu90640", sim_baud=460800, baud=460800)
    assert right.wait(3.0) is not None  # at the module's speed it reads


def test_90640_baud_after_power_cycle_falls_back() -> None:
    sim = ThermalSim("gy_mcu90640", rate_hz=40.0, baud_applies="power_cycle")
    sim.use_auto_link()
    sim.start()
    drv = GyMcu90640(GyMcu90640Config.model_validate({**FAST, "port": sim.path}))
    drv.start()
    try:
        assert drv.wait(3.0) is not None
        assert not drv.set_module_baud(460800, timeout=0.5)  # stored, not applied: no frame at 460800
        assert sim.stored_baud == 460800 and sim.baud == 115200
        assert drv.baud == 115200 and "no good frame at 460800" in str(drv.stats.last_error)
        assert drv.wait(3.0) is not None  # reading again at the old speed
        sim.unplug()  # switched off and on: now the module speaks 460800
        sim.plug()
        assert sim.baud == 460800
        assert drv.wait(1.5) is None  # the driver, still at 115200, gets nothing
        # switching again: the command is junk at 115200, but the reopen at 460800 finds the module
        assert drv.set_module_baud(460800) and drv.baud == 460800 == sim.line_baud()
    finally:
        drv.close()
        sim.stop()
    with pytest.raises(RuntimeError, match="before start"):
        GyMcu90640(GyMcu90640Config(port=sim.path)).set_module_baud(460800)


def test_90640_face_where_the_sim_put_it(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    scene = Scene(face_center=(9.0, 12.0))
    _, drv = rig("gy_mcu90640", scene=scene)
    r = drv.wait(3.0)
    assert r is not None and r.frame is not None
    (lx, ly), (rx, _), _ = eye_geometry(scene)
    hottest = np.unravel_index(int(np.argmax(r.frame)), r.frame.shape)
    assert hottest[0] == round(ly) and hottest[1] in (round(lx), round(rx))
    assert r.frame[12, 9] > 34.0 and r.frame[12, 25] < 26.0  # face on the left, wall on the right


def test_fever(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    _, spot = rig("gy_mcu90614", "fever")
    _, array = rig("gy_mcu90640", "fever")
    r1, r2 = spot.wait(3.0), array.wait(3.0)
    assert r1 is not None and 36.0 < r1.object_c < 36.8
    assert r2 is not None and 37.9 < r2.object_c < 38.6


@pytest.mark.parametrize("kind", ["gy_mcu90614", "gy_mcu90640", "ascii_line"])
def test_noise_counts_failures_without_false_readings(
        rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]], kind: str) -> None:
    sim, drv = rig(kind, "noise", rate_hz=80.0)
    assert wait_until(lambda: sim.log.corrupted >= 4 and drv.stats.frames_ok >= 8 and drv.stats.checksum_failures >= 2)
    st = drv.stats  # read before the sim's counts, which only grow: frames_ok can't exceed the good frames sent
    assert st.checksum_failures >= 2
    assert st.frames_ok <= sim.log.frames - sim.log.corrupted
    r = drv.read()
    assert r is not None
    if kind == "gy_mcu90640":
        assert r.frame is not None and float(np.min(r.frame)) > 15.0 and float(np.max(r.frame)) < 40.0
    else:
        assert 31.0 < r.object_c < 38.0  # noisy, but never a corrupted value


@pytest.mark.parametrize("kind", ["gy_mcu90614", "gy_mcu90640", "ascii_line"])
def test_garbage_resync(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]], kind: str) -> None:
    sim, drv = rig(kind, "garbage", rate_hz=80.0)
    assert wait_until(lambda: sim.log.garbage_bytes > 100 and drv.stats.frames_ok >= 10)
    st = drv.stats
    assert st.resyncs >= 1 or st.checksum_failures >= 1
    r = drv.read()
    assert r is not None and (r.frame is not None or 33.0 < r.object_c < 36.0)


def test_dropouts_age_and_stale_reading(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    _, drv = rig("gy_mcu90614", "dropouts", max_age_s=0.15)
    assert drv.wait(3.0) is not None
    assert wait_until(lambda: drv.read() is None)  # the silence is longer than max_age_s
    st = drv.stats
    assert st.last_good_age_s is not None and st.last_good_age_s > 0.15
    assert wait_until(lambda: drv.read() is not None)  # and readings come back by themselves


@pytest.mark.parametrize("kind", ["gy_mcu90614", "gy_mcu90640"])
def test_unplug_and_replug(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]], kind: str) -> None:
    sim, drv = rig(kind, "unplug")
    first_tty = sim.tty_path
    assert drv.wait(3.0) is not None
    assert wait_until(lambda: drv.stats.reconnects >= 1 and sim.plug_count >= 2)
    assert drv.stats.last_error is not None  # it said what happened
    r = drv.wait(3.0)  # and after the new pty appeared, it reads again
    assert r is not None
    assert sim.plug_count >= 2 and sim.tty_path != "" and first_tty != ""
    # the replugged module needed its start command again, and got it
    starts = [c for c in sim.log.commands if c in (CMD_CONTINUOUS, CMD_CONT_40)]
    assert len(starts) >= 2


def test_ascii_unplug_and_replug(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    sim, drv = rig("ascii_line", "unplug", max_age_s=0.15)  # away for 0.3 s: longer than max_age_s
    assert drv.wait(3.0) is not None
    assert wait_until(lambda: not sim.plugged)
    gone = time.monotonic()
    assert wait_until(lambda: drv.read() is None, timeout=3.0)  # no stale value while it is away
    assert wait_until(lambda: drv.stats.reconnects >= 1 and sim.plug_count >= 2)
    assert drv.stats.last_error is not None  # it said what happened
    r = drv.wait(3.0, newer_than=gone)  # the new pty behind the same link streams again: no command needed
    assert r is not None and 34.0 < r.object_c < 35.2
    assert sim.log.commands == []  # a line sensor is never sent anything


def test_ascii_corrupted_digits_over_the_pty() -> None:
    """Lines as a sensor with a flaky cable sends them, through a real pty and pyserial: the digits that
    the range can catch never become a reading."""
    dev = PtyDevice(name="ascii-lines").start()
    drv = AsciiLine(AsciiLineConfig.model_validate({**FAST, "port": dev.path, "min_c": 20.0, "max_c": 45.0}))
    drv.start()
    try:
        assert wait_until(lambda: drv.stats.connected)  # opened (pyserial's open drops what was queued)
        def handled() -> int:
            st = drv.stats
            return st.frames_ok + st.implausible + st.checksum_failures

        seen: list[float] = []
        for line in (b"36.6\n", b"86.6\n", b"3G.6\n", b"\xb36.6\n", b"36.7\n"):
            before = handled()
            assert dev.write(line)
            assert wait_until(lambda: handled() > before)  # noqa: B023 (called within this iteration)
            r = drv.read()
            if r is not None and r.object_c not in seen:
                seen.append(r.object_c)
        assert seen == [36.6, 36.7]
        st = drv.stats
        assert (st.frames_ok, st.implausible, st.checksum_failures) == (2, 1, 2)
    finally:
        drv.close()
        dev.stop()


def test_hang_resends_start_command(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    sim, drv = rig("gy_mcu90614", "hang")
    assert drv.wait(3.0) is not None
    assert wait_until(lambda: sim.log.commands.count(CMD_CONTINUOUS) >= 2, timeout=5)
    assert drv.wait(3.0) is not None


def test_missing_port_retries_then_reads(tmp_path: object) -> None:
    sim = ThermalSim("gy_mcu90614", rate_hz=40)
    sim.use_auto_link()
    drv = GyMcu90614(GyMcu90614Config.model_validate({**FAST, "port": sim.path}))
    drv.start()
    try:
        assert wait_until(lambda: drv.stats.last_error is not None)
        assert "cannot open" in str(drv.stats.last_error) and drv.read() is None
        sim.start()  # the device appears
        assert drv.wait(3.0) is not None
    finally:
        drv.close()
        sim.stop()


def test_photo_scenario_has_no_warm_face(rig: Callable[..., tuple[ThermalSim, SerialThermalSensor]]) -> None:
    _, drv = rig("gy_mcu90640", "photo")
    r = drv.wait(3.0)
    assert r is not None and r.frame is not None and float(r.frame.max()) < 26.0


def test_sim_driver_type_and_config() -> None:
    cfg = TypeAdapter(ThermalConfig).validate_python({"type": "sim", "kind": "gy_mcu90614", "rate_hz": 50})
    assert isinstance(cfg, ThermalSimConfig)
    sensor = make_thermal(cfg)
    sensor.start()
    try:
        r = sensor.wait(3.0)
        assert r is not None and 34.0 < r.object_c < 35.2
    finally:
        sensor.close()
    with pytest.raises(ValidationError):
        TypeAdapter(ThermalConfig).validate_python({"type": "gy_mcu90614", "bogus": 1})
    with pytest.raises(ValidationError):
        TypeAdapter(ThermalConfig).validate_python({"type": "gy_mcu90640", "baud": 9600})
    with pytest.raises(ValidationError):
        TypeAdapter(ThermalConfig).validate_python({"type": "ascii_line", "pattern": "(?P<x>\\d+)"})
    with pytest.raises(ValidationError):
        TypeAdapter(ThermalConfig).validate_python({"type": "nope"})
    for model in (GyMcu90614Config, GyMcu90640Config, AsciiLineConfig, ThermalSimConfig):
        assert all(f.description for f in model.model_fields.values()), model


def test_scheduled_fever_windows_repeat() -> None:
    from drivers.emulators.thermal import ThermalSim

    sim = ThermalSim("gy_mcu90614", "normal", fever_windows=((1.0, 2.0),), schedule_period_s=5.0)
    t0 = sim._created
    assert not sim.fever_now(t0 + 0.5)
    assert sim.fever_now(t0 + 1.5)
    assert not sim.fever_now(t0 + 2.5)
    assert sim.fever_now(t0 + 6.5)  # the next period
