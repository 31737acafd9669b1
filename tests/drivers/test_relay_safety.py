"""Life-safety I/O of the relay drivers against the Modbus board simulator on a real pty: the fire input
holds the turnstile released (within 200 ms, through a restart, while it flaps, when its supervised line
is cut), the exit button, the siren output, holds and the fail mode; GPIO's line settings for the new
lines with the real gpiod objects; the pure FireWatch and end-of-line bands."""

from __future__ import annotations

import threading
import time

import pytest
from gpiod.line import Direction, Edge
from pydantic import ValidationError
from support.wait import poll_until as wait_until

from drivers.emulators.relay import LcusSim, ModbusSim, RelayTiming
from drivers.relay import GpioConfig, LcusConfig, ModbusRtuConfig
from drivers.relay.fire import FireWatch
from drivers.relay.gpio import input_settings, output_settings
from drivers.relay.lcus import LcusRelay, lcus_frame
from drivers.relay.modbus_rtu import ModbusRtuRelay, fire_state
from drivers.relay.protocol import InputEvent

FAST = RelayTiming(pass_delay_s=0.05, pass_width_s=0.08, door_hold_s=0.05)
WIRED = {"pass_input": 0, "door_input": 1, "fire_input": 2, "exit_input": 3, "siren_coil": 1,
         "input_poll_s": 0.02, "fire_release_s": 0.5}




def _board(cleanup: list[object], scenario: str = "no_pass") -> ModbusSim:
    sim = ModbusSim(scenario, timing=FAST, seed=1)
    sim.start()
    cleanup.append(sim)
    return sim


def _relay(cleanup: list[object], sim: ModbusSim, **cfg: object) -> ModbusRtuRelay:
    relay = ModbusRtuRelay(ModbusRtuConfig.model_validate({"port": sim.path, **WIRED, **cfg}))
    relay.start()
    cleanup.append(relay)
    return relay


def _coil0(sim: ModbusSim) -> list[tuple[float, bool]]:
    return [(c.t, c.on) for c in sim.log.changes if c.coil == 0]


def _events(relay: ModbusRtuRelay, into: list[InputEvent]) -> list[InputEvent]:
    into.extend(relay.events())
    return into


def test_fire_holds_the_turnstile_released_within_200_ms(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim, fire_release_s=2.0)  # long against a starved poll, see the end
    assert wait_until(lambda: relay.input_state("fire") is False)  # polled: no fire (the NC contact closed)
    assert not sim.coils[0]
    polls_before = relay.polls
    t_fire = sim.set_fire(True)
    assert wait_until(lambda: sim.coils[0])
    t_coil = next(t for t, on in _coil0(sim) if on)
    latency = t_coil - t_fire
    polls = relay.polls - polls_before
    print(f"fire input -> coil on: {latency * 1000:.1f} ms, {polls} polls")
    assert 0 <= latency < 0.2
    assert relay.holds == {"fire"} and relay.state and relay.input_state("fire") is True
    events: list[InputEvent] = []
    assert wait_until(lambda: any(e.name == "fire" and e.active for e in _events(relay, events)))
    # no decision can close it: a pulse that ends, set(False)
    relay.pulse(100)
    assert relay.wait_idle(3.0)
    relay.set(False)
    assert sim.coils[0] and relay.state and not any(not on for _, on in _coil0(sim))
    # the fire ends: released until the input has read inactive for fire_release_s, then locked
    t_clear = sim.set_fire(False)
    assert wait_until(lambda: not sim.coils[0], timeout=5)
    t_off = [t for t, on in _coil0(sim) if not on][-1]
    # fire_release_s (2 s) counts from the last poll that read it active, one poll before t_clear on an
    # idle machine, longer when the worker is starved: 1.5 s leaves half a second for that
    assert t_off - t_clear >= 1.5
    assert wait_until(lambda: any(e.name == "fire" and not e.active for e in _events(relay, events)))
    assert relay.holds == frozenset()


def test_fire_survives_a_restart(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim)
    sim.set_fire(True)
    assert wait_until(lambda: sim.coils[0])
    relay.close()  # the gate stops (secure fail mode) during the fire: the relay is left released
    assert sim.coils[0]
    again = _relay(cleanup, sim)  # the gate starts again while the fire is still active
    assert again.state and again.holds == {"fire"} and again.input_state("fire") is True
    assert wait_until(lambda: again.polls >= 3)
    assert sim.coils[0] and [on for _, on in _coil0(sim)] == [True]  # never switched off in between
    # after the fire, a restart forces it off as usual
    sim.set_fire(False)
    assert wait_until(lambda: not sim.coils[0], timeout=5)
    again.close()
    third = _relay(cleanup, sim)
    assert not third.state and not sim.coils[0] and third.holds == frozenset()


def test_flapping_fire_never_leaves_it_locked_while_active(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim)
    assert wait_until(lambda: relay.input_state("fire") is False)
    stop = threading.Event()

    def flap() -> None:  # 10 changes a second, as a loose wire to the fire panel makes
        active = True
        while not stop.is_set():
            sim.set_fire(active)
            active = not active
            stop.wait(0.1)

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    assert wait_until(lambda: len(sim.fire_changes) >= 30, timeout=10)
    stop.set()
    flapper.join()
    sim.set_fire(False)
    first_active = sim.fire_changes[0][0]
    last_active = max(t for t, active in sim.fire_changes if active)
    assert wait_until(lambda: not sim.coils[0], timeout=5)
    coil = _coil0(sim)
    on_t = next(t for t, on in coil if on)
    assert on_t - first_active < 0.2
    offs = [t for t, on in coil if not on]
    assert len(offs) == 1 and offs[0] >= last_active + 0.5 - 0.05  # locked only after it stayed inactive


def test_cut_supervised_line_is_fire_and_trouble(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim, fire_input=None, fire_eol_register=0)
    assert relay.input_names == ("pass", "door", "exit", "fire", "fire_trouble")
    assert wait_until(lambda: relay.input_state("fire") is False and relay.input_state("fire_trouble") is False)
    t_cut = sim.cut_fire_line()
    assert wait_until(lambda: sim.coils[0])
    assert next(t for t, on in _coil0(sim) if on) - t_cut < 0.2
    assert wait_until(lambda: relay.input_state("fire_trouble") is True)
    assert relay.input_state("fire") is True and relay.holds == {"fire"}
    events: list[InputEvent] = []
    assert wait_until(lambda: {("fire", True), ("fire_trouble", True)}
                      <= {(e.name, e.active) for e in _events(relay, events)})


def test_normally_open_fire_contact(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    sim.fire_closed = False  # an NO contact at rest
    relay = _relay(cleanup, sim, fire_contact="no")
    assert wait_until(lambda: relay.input_state("fire") is False)
    sim.fire_closed = True  # it closes: fire
    assert wait_until(lambda: sim.coils[0] and relay.input_state("fire") is True)


def test_exit_button_pulses_and_is_an_event(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim, exit_pulse_ms=300)
    assert wait_until(lambda: relay.input_state("exit") is False)
    sim.press_exit(0.1)
    events: list[InputEvent] = []
    assert wait_until(lambda: any(e.name == "exit" and e.active for e in _events(relay, events)))
    assert wait_until(lambda: sim.coils[0])
    assert relay.wait_idle(3.0) and not sim.coils[0]
    on, off = _coil0(sim)
    assert off[0] - on[0] >= 0.3 and relay.stats.pulses == 1


def test_siren_sounds_for_its_time_capped(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim, siren_max_s=0.4)
    t_first = time.monotonic()
    assert relay.siren(0.2)
    assert wait_until(lambda: sim.coils[1] and relay.siren_on)
    assert wait_until(lambda: not sim.coils[1] and not relay.siren_on)
    t_second = time.monotonic()
    relay.siren(60)  # longer than siren_max_s: cut to 0.4 s
    assert wait_until(lambda: sim.coils[1])
    assert wait_until(lambda: not relay.siren_on and not sim.coils[1], timeout=5)
    siren = [(c.t, c.on) for c in sim.log.changes if c.coil == 1]
    assert [on for _, on in siren] == [True, False, True, False]
    # at least the time asked (and the cap), never the 60 s asked; generous above for a busy machine
    assert 0.2 <= siren[1][0] - t_first < 3.0 and 0.4 <= siren[3][0] - t_second < 3.0
    assert not sim.coils[0]  # the turnstile was never touched


def test_hold_and_fail_modes(cleanup: list[object]) -> None:
    sim = _board(cleanup)
    relay = _relay(cleanup, sim, fail_mode="secure")
    relay.hold("hold_open", True)
    assert wait_until(lambda: sim.coils[0])
    relay.pulse(100)
    assert relay.wait_idle(3.0) and sim.coils[0]  # a pulse's end does not end the hold
    relay.hold("hold_open", False)
    assert wait_until(lambda: not sim.coils[0])
    relay.hold("hold_open", True)
    assert wait_until(lambda: sim.coils[0])
    relay.close()  # secure: a guard's hold ends with the gate
    assert not sim.coils[0]
    safe = _relay(cleanup, sim)  # the default
    assert not sim.coils[0]  # at start it is forced off (the gate runs)
    safe.close()
    assert sim.coils[0]  # safe: left released while the gate is not running


@pytest.mark.parametrize(("fail_mode", "fire", "keep_on"), [("safe", False, True), ("secure", False, False),
                                                            ("secure", True, True), ("safe", True, True)])
def test_close_tells_the_driver_whether_the_relay_is_left_on(cleanup: list[object], monkeypatch: pytest.MonkeyPatch,
                                                              fail_mode: str, fire: bool, keep_on: bool) -> None:
    """What a driver hears at close (GPIO keeps its output line driven with keep_on: drivers.relay.gpio):
    the relay is left on in the safe fail mode and while a fire holds it, not in the secure mode."""
    sim = _board(cleanup)
    sim.set_fire(fire)
    relay = _relay(cleanup, sim, fail_mode=fail_mode)
    assert relay.holds == ({"fire"} if fire else frozenset())
    seen: list[bool] = []
    release = relay._release
    monkeypatch.setattr(relay, "_release", lambda keep_on: (seen.append(keep_on), release(keep_on))[1])
    relay.close()
    assert seen == [keep_on] and sim.coils[0] is keep_on and relay.state is keep_on


def test_lcus_siren_channel(cleanup: list[object]) -> None:
    sim = LcusSim(channels=2)
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path, siren_channel=2))
    relay.start()
    cleanup.append(relay)
    relay.siren(0.1)
    assert wait_until(lambda: sim.coil(2))
    assert wait_until(lambda: not sim.coil(2))
    assert lcus_frame(2, True) in sim.log.frames and not sim.coil(1)
    with pytest.raises(ValidationError, match="siren_channel"):
        LcusConfig(channel=2, siren_channel=2)


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="different discrete inputs"):
        ModbusRtuConfig(pass_input=0, fire_input=0)
    with pytest.raises(ValidationError, match="not both"):
        ModbusRtuConfig(fire_input=2, fire_eol_register=0)
    with pytest.raises(ValidationError, match="must rise"):
        ModbusRtuConfig(fire_eol_register=0, fire_eol_bands=(500, 400, 800))
    with pytest.raises(ValidationError, match="siren_coil"):
        ModbusRtuConfig(coil=1, siren_coil=1)
    with pytest.raises(ValidationError, match="different offsets"):
        GpioConfig(line=5, fire_line=6, siren_line=6)
    with pytest.raises(ValidationError):
        ModbusRtuConfig.model_validate({"fail_mode": "open"})


def test_end_of_line_bands() -> None:
    bands = (100, 400, 800)
    assert fire_state(600, bands) == (False, False)
    assert fire_state(250, bands) == (True, False)
    assert fire_state(4095, bands) == (True, True)  # cut
    assert fire_state(20, bands) == (True, True)  # shorted


def test_fire_watch_holds_on_any_active_sample() -> None:
    watch = FireWatch(1.0)
    assert not watch.update([(False, 0.0)], 0.0)
    assert watch.update([(True, 0.95), (False, 0.99)], 1.0)  # an edge between polls counts
    assert watch.update([(False, 1.9)], 1.9)
    assert not watch.update([(False, 2.0)], 2.0)  # inactive for 1.0 s since the last active sample
    assert watch.update([(True, 2.1)], 2.1)


@pytest.mark.parametrize(("contact", "active_low"), [("nc", False), ("no", True)])
def test_gpio_fire_lines_read_fire_as_active(contact: str, active_low: bool) -> None:
    cfg = GpioConfig.model_validate({"line": 17, "pass_line": 27, "fire_line": 5, "fire_trouble_line": 6,
                                     "exit_line": 13, "siren_line": 19, "inputs_active_low": True,
                                     "fire_contact": contact})
    settings = {**input_settings(cfg), **output_settings(cfg, relay_on=False)}
    assert sorted(settings) == [5, 6, 13, 17, 19, 27]
    # contact to ground with the pull-up: closed = low. NC: the line goes high on fire -> active-high
    assert settings[5].active_low is active_low and settings[6].active_low is active_low
    assert settings[5].edge_detection is Edge.BOTH
    assert settings[13].active_low and settings[27].active_low  # the exit button and PASS: closed = active
    assert settings[19].direction is Direction.OUTPUT
    assert cfg.inputs() == {"pass": 27, "fire": 5, "fire_trouble": 6, "exit": 13}


def test_boards_without_a_siren_say_so() -> None:
    assert not LcusRelay(LcusConfig()).siren(5)
    assert not ModbusRtuRelay(ModbusRtuConfig()).siren(5)
