"""Relays and inputs on a Linux GPIO character device (/dev/gpiochipN) through the `gpiod` v2 API.

One line drives the relay (optionally active-low, as on most relay HATs); optional input lines carry
the turnstile's PASS output, a door sensor, the fire panel's contact and its trouble contact (the
supervision: a cut line reads as trouble, and trouble is fire) and the exit button; an optional output
line drives the siren relay. The fire and trouble lines are requested with the polarity that makes the
kernel's logical value "fire" (`fire_contact`: an NC contact that opens reads active), so their edges and
values need no converting.

The lines are requested in two requests, in the order `request_plan` gives (pure, tested without a chip):
the input lines first, read at once, then the outputs, the relay line with its initial value already ON
when the fire (or trouble) input reads active and OFF otherwise (active-low is the kernel's line flag, so
values and edges are logical and an active-low relay does not click on), so a restart during a fire never
drives the relay off, not even for a moment. At close with the relay left on (`fail_mode = "safe"`, or a
fire holds it) the output lines are not released: they stay driven on until the process exits, when the
kernel releases them and a released line's state is the chip's (README, "Life safety"); a relay opened
again on the same chip in this process takes that request over. Also decided here: `input_events` (the
kernel's timestamped edges on the input lines become InputEvents, so a PASS pulse shorter than the
poll period is still seen). The pulse timing is BaseRelay's (drivers.relay.worker, `PulsePlan`); a GPIO write is a local
ioctl, so pulse() switches on in the caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Generator, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from drivers.relay.config import RelayConfigBase
from drivers.relay.protocol import InputEvent, RelayError
from drivers.relay.worker import BaseRelay

if TYPE_CHECKING:  # gpiod is imported where lines are set up or used: loading a config must not load it
    import gpiod

log = logging.getLogger(__name__)


class GpioConfig(RelayConfigBase):
    type: Literal["gpio"] = Field("gpio", description="Relay on a GPIO line (gpiod character device).")
    chip: str = Field("/dev/gpiochip0", description="GPIO chip device.")
    line: int = Field(17, ge=0, le=1023, description="Line offset driving the relay.")
    active_low: bool = Field(False, description="The relay switches on when the line is low.")
    pass_line: int | None = Field(None, ge=0, le=1023, description="Input line from the turnstile's PASS "
                                  "output, or unset.")
    door_line: int | None = Field(None, ge=0, le=1023, description="Input line from a door sensor, or unset.")
    fire_line: int | None = Field(None, ge=0, le=1023, description="Input line from the fire panel's contact "
                                  "(see fire_contact), or unset.")
    fire_trouble_line: int | None = Field(None, ge=0, le=1023, description="Input line from the fire panel's "
                                          "trouble contact (see fire_contact), or unset.")
    exit_line: int | None = Field(None, ge=0, le=1023, description="Input line from the exit button, or unset.")
    siren_line: int | None = Field(None, ge=0, le=1023, description="Output line driving the siren relay "
                                   "(active high), or unset.")
    inputs_active_low: bool = Field(True, description="Inputs are active when low (contact to ground with "
                                    "the pull-up enabled).")
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = Field("pull_up", description="Input bias.")
    debounce_ms: int = Field(10, ge=0, le=1000, description="Input debounce period (where the chip supports "
                                                            "it).")
    consumer: str = Field("edge-gate", min_length=1, max_length=31, description="Name shown by gpioinfo.")

    @model_validator(mode="after")
    def _distinct_lines(self) -> GpioConfig:
        used = [x for x in (self.line, *self.inputs().values(), self.siren_line) if x is not None]
        if len(used) != len(set(used)):
            raise ValueError(f"relay, pass, door, fire, fire trouble, exit and siren lines must be different "
                             f"offsets, got {used}")
        return self

    def inputs(self) -> dict[str, int]:
        """The input lines in use, by input name."""
        wired = (("pass", self.pass_line), ("door", self.door_line), ("fire", self.fire_line),
                 ("fire_trouble", self.fire_trouble_line), ("exit", self.exit_line))
        return {name: off for name, off in wired if off is not None}


def input_settings(cfg: GpioConfig, edges: bool = True) -> dict[int, gpiod.LineSettings]:
    """The gpiod request of the input lines: both edges detected (unless `edges` is off: a chip without
    interrupts, whose inputs are only polled) and timestamped on CLOCK_MONOTONIC (time.monotonic()'s
    clock); the fire and trouble lines with the polarity that makes fire the logical ACTIVE."""
    import gpiod
    from gpiod.line import Bias, Clock, Direction, Edge

    bias = {"pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "disabled": Bias.DISABLED,
            "as_is": Bias.AS_IS}[cfg.bias]
    nc = cfg.fire_contact == "nc"
    settings = {}
    for name, offset in cfg.inputs().items():
        # logical ACTIVE = contact closed; for an NC fire (or trouble) contact the opposite: fire
        flip = nc and name in ("fire", "fire_trouble")
        settings[offset] = gpiod.LineSettings(
            direction=Direction.INPUT, edge_detection=Edge.BOTH if edges else Edge.NONE,
            bias=bias, active_low=cfg.inputs_active_low != flip,
            debounce_period=timedelta(milliseconds=cfg.debounce_ms), event_clock=Clock.MONOTONIC)
    return settings


def output_settings(cfg: GpioConfig, relay_on: bool) -> dict[int, gpiod.LineSettings]:
    """The gpiod request of the output lines: the relay line driven `relay_on` from the moment it is
    requested (active-low is the kernel's line flag, so the value is logical: an active-low relay does
    not click on when requested off), the siren line off."""
    import gpiod
    from gpiod.line import Direction, Value

    settings = {cfg.line: gpiod.LineSettings(direction=Direction.OUTPUT, active_low=cfg.active_low,
                                             output_value=Value.ACTIVE if relay_on else Value.INACTIVE)}
    if cfg.siren_line is not None:
        settings[cfg.siren_line] = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
    return settings


def request_plan(cfg: GpioConfig, edges: bool = True,
                 relay_on: bool = False) -> Generator[dict[int, gpiod.LineSettings], Mapping[str, bool], None]:
    """The lines to request, in order. First it yields the input lines' settings; the caller requests them,
    reads them and sends their values back (by input name, as `_read_inputs` returns them); only then it
    yields the output lines' settings, the relay's initial value ON if the fire or trouble input reads
    active (a restart during a fire: the relay is never driven off first) or `relay_on` (a reopen keeps the
    state the relay had), else OFF."""
    values = yield input_settings(cfg, edges)
    fire = bool(values.get("fire") or values.get("fire_trouble"))
    yield output_settings(cfg, relay_on or fire)


def _request_config(settings: Mapping[int, gpiod.LineSettings]) -> dict[Iterable[int | str] | int | str,
                                                                        gpiod.LineSettings | None]:
    return dict(settings.items())


# output requests kept at close with the relay on (fail_mode safe, or a fire), by chip and relay line: the lines
# stay driven until the process exits, and a relay opened again on them in this process takes the request over
_kept: dict[tuple[str, int], Any] = {}
_kept_lock = threading.Lock()


def _take_kept(chip: str, line: int, offsets: Iterable[int]) -> Any:
    """The output request kept for relay `line` on `chip` if it holds exactly `offsets`, else None (one
    holding other lines is released, so they can be requested)."""
    with _kept_lock:
        request = _kept.pop((chip, line), None)
    if request is not None and sorted(request.offsets) != sorted(offsets):
        with contextlib.suppress(Exception):
            request.release()
        return None
    return request


def input_events(edges: Iterable[gpiod.EdgeEvent], names: Mapping[int, str]) -> list[InputEvent]:
    """Edge events of the input lines as InputEvents, in the kernel's order. The kernel reports edges of
    the logical value (with active_low a falling voltage is a rising edge: the input became active), and
    the MONOTONIC event clock is the one time.monotonic() reads, so `t` compares with other events."""
    import gpiod

    out = []
    for edge in edges:
        name = names.get(edge.line_offset)
        if name is not None:
            out.append(InputEvent(name, edge.event_type is gpiod.EdgeEvent.Type.RISING_EDGE,
                                  edge.timestamp_ns / 1e9))
    return out


class GpioRelay(BaseRelay):
    name = "gpio"

    def __init__(self, cfg: GpioConfig) -> None:
        super().__init__(cfg)
        self.cfg = cfg
        self._inputs_request: Any = None  # the input lines (None when there are none)
        self._outputs_request: Any = None  # the relay and siren lines; None: not open
        self._input_lines = cfg.inputs()
        self._input_names = {off: name for name, off in self._input_lines.items()}
        self.input_names = tuple(self._input_lines)
        self.has_siren = cfg.siren_line is not None
        self._edges = True

    def _open(self) -> None:
        import gpiod

        chip = self.cfg.chip
        if not os.path.exists(chip):
            raise RelayError(f"gpio: chip {chip} does not exist (no GPIO character device here; "
                             f"`ls /dev/gpiochip*` lists the chips)")
        if not gpiod.is_gpiochip_device(chip):
            raise RelayError(f"gpio: {chip} is not a GPIO character device")
        plan = request_plan(self.cfg, edges=self._edges, relay_on=self._state)
        inputs = next(plan)
        values: dict[str, bool] = {}
        if inputs:
            try:
                self._inputs_request = gpiod.request_lines(chip, consumer=self.cfg.consumer,
                                                           config=_request_config(inputs))
            except OSError as exc:
                if not self._edges:
                    raise RelayError(f"gpio: cannot request lines {sorted(inputs)} on {chip}: {exc}") from exc
                log.warning("gpio: requesting %s lines %s with edge detection failed (%s); trying without "
                            "(the inputs are then only polled, every %g s)", chip, sorted(inputs), exc,
                            self.cfg.input_poll_s)
                self._edges = False  # e.g. an I2C expander without its interrupt wired
                self._open()
                return
            try:
                values = self._input_values()  # the fire input, before the relay line is requested
            except Exception as exc:
                self._close_port()
                raise RelayError(f"gpio: cannot read lines {sorted(inputs)} on {chip}: {exc}") from exc
        outputs = plan.send(values)
        request = _take_kept(chip, self.cfg.line, outputs)
        try:
            if request is not None:  # still driven since a close in this process: no release in between
                request.set_values({off: s.output_value for off, s in outputs.items()})
            else:
                request = gpiod.request_lines(chip, consumer=self.cfg.consumer, config=_request_config(outputs))
        except Exception as exc:
            if request is not None:
                with contextlib.suppress(Exception):
                    request.release()
            self._close_port()
            raise RelayError(f"gpio: cannot request lines {sorted(outputs)} on {chip}: {exc}") from exc
        self._outputs_request = request

    def _close_port(self) -> None:
        self._release(keep_on=False)

    def _release(self, keep_on: bool) -> None:
        """Release the lines; with `keep_on` (at close, the relay left on) the output lines stay requested
        and driven until the process exits: the kernel then releases them (README, Life safety)."""
        requests = (self._inputs_request, self._outputs_request)
        self._inputs_request = self._outputs_request = None
        inputs, outputs = requests
        if keep_on and outputs is not None:
            with _kept_lock:
                _kept[(self.cfg.chip, self.cfg.line)] = outputs
            log.info("gpio: relay line %d on %s stays driven on until the process exits", self.cfg.line,
                     self.cfg.chip)
            requests = (inputs, None)
        for request in requests:
            if request is not None:
                with contextlib.suppress(Exception):  # already released or chip gone: nothing left to free
                    request.release()

    def _write(self, on: bool) -> None:
        from gpiod.line import Value

        if self._outputs_request is None:
            self._open()
        self._outputs_request.set_value(self.cfg.line, Value.ACTIVE if on else Value.INACTIVE)

    def _write_siren(self, on: bool) -> None:
        from gpiod.line import Value

        if self._outputs_request is None:
            self._open()
        self._outputs_request.set_value(self.cfg.siren_line, Value.ACTIVE if on else Value.INACTIVE)

    def _read_input_edges(self) -> list[InputEvent]:
        if self._outputs_request is None:
            self._open()
        if not (self._edges and self._input_lines):
            return []
        edges: list[gpiod.EdgeEvent] = []
        while self._inputs_request.wait_edge_events(0):
            edges += self._inputs_request.read_edge_events()
        return input_events(edges, self._input_names)

    def _read_inputs(self) -> dict[str, bool]:
        if self._outputs_request is None:
            self._open()
        return self._input_values()

    def _input_values(self) -> dict[str, bool]:
        from gpiod.line import Value

        if not self._input_lines:
            return {}
        values = self._inputs_request.get_values(list(self._input_lines.values()))
        return {name: value == Value.ACTIVE for name, value in zip(self._input_lines, values, strict=True)}
