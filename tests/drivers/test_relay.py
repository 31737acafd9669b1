"""Relay drivers against the board simulators over real pseudo-terminals."""

from __future__ import annotations

import itertools

import pytest
from pydantic import TypeAdapter, ValidationError
from support.wait import poll_until as wait_until

from drivers.emulators.relay import LcusSim, ModbusSim, RelayTiming
from drivers.relay import LcusConfig, ModbusRtuConfig, RelayConfig, RelayError, RelaySimConfig, make_relay
from drivers.relay.lcus import LcusRelay, lcus_frame
from drivers.relay.modbus_rtu import ModbusRtuRelay
from drivers.relay.protocol import InputEvent
from drivers.relay.pulse import PulsePlan

ON = bytes.fromhex("A00101A2")
OFF = bytes.fromhex("A00100A1")
FAST = RelayTiming(pass_delay_s=0.05, pass_width_s=0.08, door_hold_s=0.05, tailgate_every_s=0.3,
                   unplug_after_s=0.3, unplug_for_s=0.3, corrupt_every=3)




def test_lcus_frames() -> None:
    assert lcus_frame(1, True) == ON and lcus_frame(1, False) == OFF
    assert lcus_frame(2, True) == bytes.fromhex("A00201A3")


def test_lcus_forced_off_pulse_and_close(cleanup: list[object]) -> None:
    sim = LcusSim()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path, fail_mode="secure"))  # the default is safe: see below
    relay.start()
    cleanup.append(relay)
    assert wait_until(lambda: sim.log.frames == [OFF])  # forced off at start
    relay.pulse(400)
    assert relay.state and relay.pulsing  # returned at once: a pulse that waited would be over
    assert wait_until(lambda: sim.coil(1))
    relay.pulse(150)  # during the pulse: at most extends it, no second ON frame
    assert relay.wait_idle(2.0)
    assert wait_until(lambda: not sim.coil(1))
    assert sim.log.frames == [OFF, ON, OFF]
    on, off = sim.log.changes[0], sim.log.changes[1]
    assert on.on and not off.on and off.t - on.t >= 0.39
    relay.set(True)
    assert wait_until(lambda: sim.coil(1))
    relay.close()  # forced off at exit
    assert wait_until(lambda: not sim.coil(1))
    assert sim.log.frames[-1] == OFF


def test_lcus_sim_ignores_corrupt_frames(cleanup: list[object]) -> None:
    sim = LcusSim()
    sim.start()
    cleanup.append(sim)
    import serial

    with serial.Serial(sim.path, 9600, timeout=0.5) as ser:
        ser.write(b"\xff\xa0\x01\x01\xa3" + b"\x00\xa0" + ON)  # bad sum, junk, then a good frame
    assert wait_until(lambda: sim.coil(1))
    assert sim.log.frames == [ON] and sim.log.bad_frames >= 1


def test_lcus_write_failure_raises_clear_error(cleanup: list[object]) -> None:
    sim = LcusSim()
    sim.use_auto_link()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path))
    relay.start()
    cleanup.append(relay)
    sim.unplug()  # USB cable pulled

    def set_off_fails() -> bool:
        # the kernel hangs a pty up asynchronously: a write just after the close may still be accepted
        try:
            relay.set(False)
        except RelayError as exc:
            assert "could not switch the relay off" in str(exc)
            return True
        return False

    assert wait_until(set_off_fails)
    with pytest.raises(RelayError, match="could not switch the relay on"):
        relay.pulse(100)
    assert relay.stats.write_failures >= 1 and relay.stats.last_error
    sim.plug()  # plugged back: the next pulse reopens the port and works
    relay.pulse(50)
    assert wait_until(lambda: ON in sim.log.frames)
    assert relay.wait_idle(2.0)


def test_start_on_missing_port_raises() -> None:
    relay = LcusRelay(LcusConfig(port="/nonexistent/ttyUSB9"))
    with pytest.raises(RelayError, match="cannot open"):
        relay.start()
    with pytest.raises(RelayError, match="before start"):
        relay.pulse(100)


def test_pulse_length_checked(cleanup: list[object]) -> None:
    sim = LcusSim()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path, max_pulse_ms=1000))
    relay.start()
    cleanup.append(relay)
    for ms in (0, -5, 1001):
        with pytest.raises(RelayError, match="outside"):
            relay.pulse(ms)
    assert not relay.state


def _modbus(cleanup: list[object], scenario: str = "normal",
            **cfg: object) -> tuple[ModbusSim, ModbusRtuRelay]:
    sim = ModbusSim(scenario, timing=FAST, seed=3)
    sim.start()
    cleanup.append(sim)
    relay = ModbusRtuRelay(ModbusRtuConfig.model_validate(
        {"port": sim.path, "pass_input": 0, "door_input": 1, "input_poll_s": 0.01, **cfg}))
    relay.start()
    cleanup.append(relay)
    return sim, relay


def test_modbus_pulse_readback_and_passage(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup)
    assert sim.log.frames[0] == bytes.fromhex("010500000000CDCA")  # fn 05 coil 0 = 0000, forced off
    assert sim.log.frames[1][:6] == bytes.fromhex("010100000001")  # fn 01 read back
    relay.pulse(200)
    assert wait_until(lambda: sim.coils[0] and relay.state)  # the worker switched it on
    assert relay.read_coil()
    writes = [f for f in sim.log.frames if f[1] == 5]
    assert writes[-1][:6] == bytes.fromhex("01050000FF00")
    events: list[InputEvent] = []

    def seen(name: str, active: bool) -> bool:
        events.extend(relay.events())
        return any(e.name == name and e.active == active for e in events)

    assert wait_until(lambda: seen("pass", True) and seen("pass", False) and seen("door", False))
    assert relay.wait_idle(2.0) and not sim.coils[0]
    assert sim.log.passes == 1
    on_write = next(c.t for c in sim.log.changes if c.on)
    pass_on = next(e.t for e in events if e.name == "pass" and e.active)
    assert pass_on - on_write >= FAST.pass_delay_s - 0.01  # the passage came after the relay opened
    assert all(a.t <= b.t for a, b in itertools.pairwise(events))
    assert relay.stats.writes >= 3 and relay.stats.write_failures == 0


def test_modbus_no_pass_and_tailgate(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup, "no_pass")
    relay.pulse(100)
    assert relay.wait_idle(2.0)
    sim.forced_inputs[sim.door_input] = True  # a sentinel: the door input, read after the whole pulse
    seen: list[InputEvent] = []
    assert wait_until(lambda: seen.extend(relay.events()) or any(e.name == "door" and e.active for e in seen))
    assert [e for e in seen if e.name == "pass"] == []  # granted, not passed
    sim2, relay2 = _modbus(cleanup, "tailgate")
    assert wait_until(lambda: sim2.log.passes >= 1)
    assert wait_until(lambda: any(e.name == "pass" and e.active for e in relay2.events()))
    assert not sim2.coils[0]  # passage without grant: the relay never opened


def test_modbus_garbage_replies_retried(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup, "garbage", input_poll_s=0.05)
    for _ in range(4):
        relay.pulse(30)
        assert relay.wait_idle(2.0)
    assert wait_until(lambda: relay.stats.write_failures + relay.stats.input_failures >= 1)
    assert not sim.coils[0]


def test_modbus_pulse_returns_at_once_and_never_overlaps(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup, "no_pass", timeout_s=2.0)
    sim.reply_delay_s = 0.5  # a slow board: switching on (write + read back) takes about 1 s
    relay.pulse(300)
    relay.pulse(200)  # while the switch-on is still on its way: no second one
    assert relay.pulsing and not relay.state  # returned at once: a pulse() that waited would find it on
    assert wait_until(lambda: relay.state)
    relay.pulse(100)  # while on: at most extends, no second ON write
    assert relay.wait_idle(10.0) and not sim.coils[0]
    ons = [c for c in sim.log.changes if c.on]
    offs = [c for c in sim.log.changes if not c.on]
    assert len(ons) == 1 and len(offs) == 1
    on_writes = [f for f in sim.log.frames if f[1] == 5 and f[4:6] == b"\xff\x00"]
    assert len(on_writes) == 1
    # the pulse lasts its full length from the moment the relay was confirmed on (after the read-back)
    assert offs[0].t - ons[0].t >= 0.3 + sim.reply_delay_s - 0.02
    assert relay.stats.pulses == 3 and relay.stats.switch_failures == 0


def test_modbus_readback_mismatch_is_counted_and_forced_off(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup, "no_pass", timeout_s=2.0)
    sim.stuck = True  # the board acknowledges the write but the coil stays off
    sim.reply_delay_s = 0.3  # and answers slowly: the write, its read-back and the retry take seconds
    relay.pulse(100)
    assert relay.stats.switch_failures == 0  # returned at once: a pulse() that waited would have failed
    sim.reply_delay_s = 0.0
    assert wait_until(lambda: relay.stats.switch_failures >= 1)
    assert "reads back 0 after writing 1" in str(relay.stats.last_error)
    assert relay.stats.write_failures >= 2  # the write and its one reopen-and-retry
    assert relay.wait_idle(2.0) and not relay.state  # forced off (the stuck coil does read off)
    sim.stuck = False  # repaired: the next pulse works
    relay.pulse(50)
    assert wait_until(lambda: any(c.on for c in sim.log.changes))
    assert relay.wait_idle(2.0) and not sim.coils[0]


def test_modbus_exception_reply_is_an_error(cleanup: list[object], caplog: pytest.LogCaptureFixture) -> None:
    sim, relay = _modbus(cleanup, "no_pass", coil=3)
    sim.coils = sim.coils[:2]  # a two-relay board: coil 3 does not exist (exception 02)
    relay.pulse(100)  # returns; the worker's switch-on fails, and so does forcing it off

    def refused() -> bool:
        try:
            relay.pulse(100)
        except RelayError as exc:
            assert "could not be switched off" in str(exc)
            return True
        return False

    assert wait_until(refused)
    assert relay.pulsing and relay.stats.switch_failures >= 2
    assert "could not switch the relay on" in caplog.text


def test_modbus_board_gone_at_a_pulse_then_back(cleanup: list[object]) -> None:
    sim = ModbusSim("no_pass", timing=FAST, seed=3)
    sim.use_auto_link()
    sim.start()
    cleanup.append(sim)
    relay = ModbusRtuRelay(ModbusRtuConfig.model_validate({"port": sim.path, "timeout_s": 0.05}))
    relay.start()
    cleanup.append(relay)
    sim.unplug()  # the RS-485 adapter is pulled
    relay.pulse(100)  # returns (that it returns at once is checked on a held board above)
    assert wait_until(lambda: relay.stats.switch_failures >= 2)  # on failed; forcing it off failed too
    with pytest.raises(RelayError, match="could not be switched off"):
        relay.pulse(100)
    sim.plug()  # back: the worker's retry switches it off, and pulses work again
    assert relay.wait_idle(3.0) and not relay.state
    relay.pulse(50)
    assert wait_until(lambda: sim.coils[0])
    assert relay.wait_idle(2.0) and not sim.coils[0]


def test_modbus_unplug_reappear(cleanup: list[object]) -> None:
    sim, relay = _modbus(cleanup, "unplug")
    assert wait_until(lambda: not sim.plugged)
    assert wait_until(lambda: relay.stats.input_failures >= 1)
    assert wait_until(lambda: sim.plugged)
    sim.scenario = "normal"  # stays plugged from now on
    assert wait_until(lambda: relay.stats.reconnects >= 1)
    relay.pulse(50)  # works again on the new pty
    assert relay.wait_idle(2.0)
    assert any(f[1] == 5 and f[4:6] == b"\xff\x00" for f in sim.log.frames)


def test_relay_sim_type_and_configs(cleanup: list[object]) -> None:
    adapter: TypeAdapter[object] = TypeAdapter(RelayConfig)
    cfg = adapter.validate_python({"type": "sim", "kind": "modbus"})
    assert isinstance(cfg, RelaySimConfig)
    relay = make_relay(cfg)
    relay.start()
    try:
        relay.pulse(100)
        assert wait_until(lambda: relay.state)
        assert wait_until(lambda: relay.input_state("pass") is not None)
    finally:
        relay.close()
    assert relay.state  # the default fail mode is safe: left released while the gate does not run
    assert cfg.fail_mode == "safe" and LcusConfig(port="/dev/x").fail_mode == "safe"
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "modbus_rtu", "pass_input": 2, "door_input": 2})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "lcus", "channel": 9})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "lcus", "unknown": True})


def test_off_failure_keeps_retrying_and_blocks_new_pulses(cleanup: list[object]) -> None:
    sim = LcusSim()
    sim.use_auto_link()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path))
    relay.start()
    cleanup.append(relay)
    relay.pulse(100)
    assert wait_until(lambda: sim.coil(1))
    sim.unplug()  # the board vanishes while the relay is on
    assert wait_until(lambda: relay.stats.write_failures >= 2, timeout=3)
    assert relay.pulsing  # not pretending the relay is off
    with pytest.raises(RelayError, match="could not be switched off"):
        relay.pulse(100)
    sim.plug()  # back: the worker's retry switches it off
    assert relay.wait_idle(3.0)
    assert not relay.state
    assert wait_until(lambda: not sim.coil(1) and sim.log.frames[-1] == OFF)
    relay.pulse(30)  # and pulses work again
    assert relay.wait_idle(2.0)


def test_pulse_plan_owes_one_switch_on_per_pulse() -> None:
    plan = PulsePlan()
    assert not plan.active and not plan.due(0.0)
    assert plan.ask(10.0, 800)  # idle: switch on
    assert not plan.ask(10.01, 300) and not plan.ask(10.02, 1000)  # pending: no second switch-on
    assert plan.pending_ms == 1000 and plan.active
    plan.switched_on(10.05)  # confirmed on: the longest ask lasts its full length from here
    assert plan.end == 10.05 + 1.0
    assert not plan.ask(10.5, 100)  # on: a shorter ask changes nothing
    assert plan.end == 10.05 + 1.0
    assert not plan.ask(10.9, 500)  # a longer one extends
    assert plan.end == 10.9 + 0.5
    assert not plan.due(11.39) and plan.due(11.4)
    plan.take_off()
    assert not plan.active
    assert plan.ask(11.41, 100)  # after the end: a new pulse, a new switch-on


def test_pulse_plan_failed_or_cancelled_switch_on() -> None:
    plan = PulsePlan()
    assert plan.ask(1.0, 500)
    plan.failed_on(1.2)  # the relay's state is unknown: switching off is due at once
    assert plan.due(1.2) and plan.pending_ms is None
    assert plan.ask(1.3, 500)  # an ask meanwhile does not put the owed switch-off off ...
    assert plan.due(1.3) and plan.end == 1.2 and not plan.switch_on_owed
    plan.take_off()  # ... it waits for it, then owes a switch-on
    assert plan.switch_on_owed and plan.pending_ms == 500
    plan.failed_off(1.5)  # and is dropped when switching off failed: no late opening
    assert plan.due(1.5) and plan.pending_ms is None
    plan.take_off()
    assert plan.ask(2.0, 500)
    plan.clear()  # set() decided while the switch-on was on its way
    plan.switched_on(2.1)
    assert not plan.active
