"""GPIO relay: configuration, the request it makes, edge events to InputEvents, and the errors an installer
sees without a GPIO chip.

No chip is faked. This sandbox has none and cannot make one: its kernel is built without GPIOLIB and
CONFIGFS_FS and booted with `nomodule`, so neither gpio-sim (configfs) nor gpio-mockup exists. What is
tested here is everything the driver decides itself, with the real gpiod objects: the line settings
(active-low, the relay off from the moment it is requested, edge detection, debounce, clock) and
the order they are requested in (the inputs first, the relay's initial value from the fire input), the
conversion of the kernel's edge events, and the merging of edges and polled states into input events.
The pulse timing is BaseRelay's PulsePlan (tests/drivers/test_relay.py). Still untested here: the
gpiod calls themselves (request_lines, set_value, get_values, read_edge_events) against a chip.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import gpiod
import pytest
from gpiod.line import Bias, Clock, Direction, Edge, Value
from gpiod.line_settings import _line_settings_to_ext
from pydantic import TypeAdapter, ValidationError

from drivers.relay import GpioConfig, RelayConfig, RelayError, make_relay
from drivers.relay.gpio import GpioRelay, input_events, input_settings, output_settings, request_plan
from drivers.relay.protocol import InputEvent, input_changes

RISING = gpiod.EdgeEvent.Type.RISING_EDGE.value
FALLING = gpiod.EdgeEvent.Type.FALLING_EDGE.value


def test_config_defaults_and_validation() -> None:
    raw = {"type": "gpio", "line": 5, "pass_line": 6, "door_line": 13}
    cfg = TypeAdapter(RelayConfig).validate_python(raw)
    assert isinstance(cfg, GpioConfig) and cfg.chip == "/dev/gpiochip0" and cfg.inputs_active_low
    assert all(f.description for f in GpioConfig.model_fields.values())
    with pytest.raises(ValidationError, match="different offsets"):
        GpioConfig(line=5, pass_line=5)
    with pytest.raises(ValidationError, match="different offsets"):
        GpioConfig(line=5, pass_line=6, door_line=6)
    with pytest.raises(ValidationError):
        GpioConfig(line=-1)
    with pytest.raises(ValidationError):
        GpioConfig.model_validate({"line": 4, "bias": "floating"})
    with pytest.raises(ValidationError):
        GpioConfig.model_validate({"line": 4, "pin": 4})


def test_inputs_named_from_config() -> None:
    assert GpioRelay(GpioConfig(line=1, pass_line=2)).input_names == ("pass",)
    assert GpioRelay(GpioConfig(line=1)).input_names == ()


@pytest.mark.parametrize("active_low", [False, True])
def test_relay_line_is_requested_off(active_low: bool) -> None:
    settings = output_settings(GpioConfig(line=17, active_low=active_low), relay_on=False)
    assert list(settings) == [17]
    relay = settings[17]
    assert relay.direction is Direction.OUTPUT
    # the kernel inverts an active-low line: INACTIVE drives it high, and an active-low relay stays off
    assert relay.active_low is active_low and relay.output_value is Value.INACTIVE
    assert relay.edge_detection is Edge.NONE
    _line_settings_to_ext(relay)  # gpiod's own conversion to the kernel request accepts it
    assert output_settings(GpioConfig(line=17, active_low=active_low), relay_on=True)[17].output_value \
        is Value.ACTIVE


def test_input_lines_detect_both_edges_on_the_monotonic_clock() -> None:
    cfg = GpioConfig(line=17, pass_line=27, door_line=22, inputs_active_low=True, bias="pull_up", debounce_ms=25)
    settings = input_settings(cfg)
    assert sorted(settings) == [22, 27]
    for offset in (27, 22):
        s = settings[offset]
        assert s.direction is Direction.INPUT and s.edge_detection is Edge.BOTH
        assert s.active_low and s.bias is Bias.PULL_UP and s.event_clock is Clock.MONOTONIC
        assert s.debounce_period == timedelta(milliseconds=25)
        _line_settings_to_ext(s)
    high = input_settings(GpioConfig(line=1, pass_line=2, inputs_active_low=False, bias="pull_down"))[2]
    assert not high.active_low and high.bias is Bias.PULL_DOWN
    polled = input_settings(cfg, edges=False)  # a chip without interrupts
    assert polled[27].edge_detection is Edge.NONE and polled[27].active_low


FIRE_WIRED = {"line": 17, "active_low": True, "pass_line": 27, "fire_line": 5, "fire_trouble_line": 6,
              "exit_line": 13, "siren_line": 19}


@pytest.mark.parametrize(("reading", "relay_on", "expected"), [
    ({"pass": False, "fire": False, "fire_trouble": False, "exit": False}, False, Value.INACTIVE),
    ({"pass": False, "fire": True, "fire_trouble": False, "exit": False}, False, Value.ACTIVE),  # fire
    ({"pass": False, "fire": False, "fire_trouble": True, "exit": False}, False, Value.ACTIVE),  # cut line
    ({"pass": True, "fire": False, "fire_trouble": False, "exit": True}, False, Value.INACTIVE),
    ({"pass": False, "fire": False, "fire_trouble": False, "exit": False}, True, Value.ACTIVE),  # a reopen
])
def test_request_plan_reads_the_fire_input_before_the_relay_line_is_requested(
        reading: dict[str, bool], relay_on: bool, expected: Value) -> None:
    """A restart during a fire: the inputs come first, and the relay line is requested already on."""
    cfg = GpioConfig.model_validate(FIRE_WIRED)
    plan = request_plan(cfg, relay_on=relay_on)
    first = next(plan)  # the input lines only: no output is requested before the fire input is read
    assert sorted(first) == [5, 6, 13, 27]
    assert all(s.direction is Direction.INPUT for s in first.values())
    assert first[5].active_low is False  # the NC fire contact reads fire as ACTIVE
    outputs = plan.send(reading)
    assert sorted(outputs) == [17, 19]
    relay, siren = outputs[17], outputs[19]
    assert relay.direction is Direction.OUTPUT and relay.active_low and relay.output_value is expected
    assert siren.direction is Direction.OUTPUT and siren.output_value is Value.INACTIVE
    for s in (*first.values(), relay, siren):
        _line_settings_to_ext(s)  # gpiod's own conversion to the kernel request accepts them
    with pytest.raises(StopIteration):  # two requests, nothing after
        next(plan)


def test_request_plan_without_inputs_requests_the_relay_off() -> None:
    plan = request_plan(GpioConfig(line=17))
    assert next(plan) == {}
    assert plan.send({})[17].output_value is Value.INACTIVE


def test_kernel_edges_become_input_events_in_order() -> None:
    names = {27: "pass", 22: "door"}
    edges = [gpiod.EdgeEvent(RISING, 5_000_000_000, 27, 1, 1),  # PASS became active (logical edge)
             gpiod.EdgeEvent(RISING, 5_010_000_000, 22, 2, 1),
             gpiod.EdgeEvent(FALLING, 5_040_000_000, 27, 3, 2),  # a 40 ms pulse, shorter than most polls
             gpiod.EdgeEvent(RISING, 5_050_000_000, 9, 4, 1)]  # not one of ours
    assert input_events(edges, names) == [InputEvent("pass", True, 5.0), InputEvent("door", True, 5.01),
                                          InputEvent("pass", False, 5.04)]
    assert input_events([], names) == []


def test_edge_timestamps_are_on_time_monotonic_clock() -> None:
    # the MONOTONIC event clock is CLOCK_MONOTONIC; the events must compare with time.monotonic() values
    stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    (event,) = input_events([gpiod.EdgeEvent(RISING, stamp, 27, 1, 1)], {27: "pass"})
    assert abs(event.t - time.monotonic()) < 0.05


def test_edges_and_polled_states_merge_into_changes() -> None:
    known: dict[str, bool] = {}
    assert input_changes(known, [], {"pass": False, "door": False}, 1.0) == []  # the first read: a baseline
    # a short PASS pulse between two polls: both edges count, with the kernel's times
    pulse = [InputEvent("pass", True, 1.01), InputEvent("pass", False, 1.03)]
    assert input_changes(known, pulse, {"pass": False, "door": False}, 1.04) == pulse
    # a change seen by the poll first, then again as an edge: one event
    assert input_changes(known, [], {"pass": False, "door": True}, 1.06) == [InputEvent("door", True, 1.06)]
    assert input_changes(known, [InputEvent("door", True, 1.055)], {"pass": False, "door": True}, 1.08) == []
    assert known == {"pass": False, "door": True}


def test_missing_chip_is_a_clear_error(tmp_path: Path) -> None:
    relay = make_relay(GpioConfig(chip=str(tmp_path / "gpiochip7"), line=3))
    with pytest.raises(RelayError, match=r"gpiochip7 does not exist"):
        relay.start()
    assert not relay.state


def test_not_a_gpio_chip_is_a_clear_error() -> None:
    assert os.path.exists("/dev/null")
    relay = make_relay(GpioConfig(chip="/dev/null", line=3))
    with pytest.raises(RelayError, match="not a GPIO character device"):
        relay.start()


@pytest.mark.skipif(not os.path.exists("/dev/gpiochip0"), reason="needs a real GPIO chip")
def test_real_chip_line_out_of_range() -> None:
    relay = make_relay(GpioConfig(chip="/dev/gpiochip0", line=1023))
    with pytest.raises(RelayError):
        relay.start()
