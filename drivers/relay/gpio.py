"""Relays and inputs on a Linux GPIO character device (/dev/gpiochipN) through the `gpiod` v2 API.

One line drives the relay (optionally active-low, as on most relay HATs); optional input lines carry
the turnstile's PASS output and a door sensor. Lines are requested once and released at close.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Literal

from pydantic import Field, model_validator

from drivers.relay.base import BaseRelay, RelayConfigBase, RelayError


class GpioConfig(RelayConfigBase):
    type: Literal["gpio"] = Field("gpio", description="Relay on a GPIO line (gpiod character device).")
    chip: str = Field("/dev/gpiochip0", description="GPIO chip device.")
    line: int = Field(17, ge=0, le=1023, description="Line offset driving the relay.")
    active_low: bool = Field(False, description="The relay switches on when the line is low.")
    pass_line: int | None = Field(None, ge=0, le=1023, description="Input line from the turnstile's PASS "
                                  "output, or unset.")
    door_line: int | None = Field(None, ge=0, le=1023, description="Input line from a door sensor, or unset.")
    inputs_active_low: bool = Field(True, description="Inputs are active when low (contact to ground with "
                                    "the pull-up enabled).")
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = Field("pull_up", description="Input bias.")
    debounce_ms: int = Field(10, ge=0, le=1000, description="Input debounce period (where the chip supports "
                                                            "it).")
    consumer: str = Field("edge-gate", min_length=1, max_length=31, description="Name shown by gpioinfo.")

    @model_validator(mode="after")
    def _distinct_lines(self) -> GpioConfig:
        used = [x for x in (self.line, self.pass_line, self.door_line) if x is not None]
        if len(used) != len(set(used)):
            raise ValueError(f"relay, pass and door lines must be different offsets, got {used}")
        return self


class GpioRelay(BaseRelay):
    name = "gpio"

    def __init__(self, cfg: GpioConfig) -> None:
        super().__init__(cfg)
        self.cfg = cfg
        self._request: Any = None
        self._input_lines = {name: off for name, off in (("pass", cfg.pass_line), ("door", cfg.door_line))
                             if off is not None}
        self.input_names = tuple(self._input_lines)

    def _open(self) -> None:
        import gpiod
        from gpiod.line import Bias, Direction, Value

        chip = self.cfg.chip
        if not os.path.exists(chip):
            raise RelayError(f"gpio: chip {chip} does not exist (no GPIO character device here; "
                             f"`ls /dev/gpiochip*` lists the chips)")
        if not gpiod.is_gpiochip_device(chip):
            raise RelayError(f"gpio: {chip} is not a GPIO character device")
        bias = {"pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "disabled": Bias.DISABLED,
                "as_is": Bias.AS_IS}[self.cfg.bias]
        from datetime import timedelta

        config: dict[Any, Any] = {
            self.cfg.line: gpiod.LineSettings(direction=Direction.OUTPUT, active_low=self.cfg.active_low,
                                              output_value=Value.INACTIVE),
        }
        for offset in self._input_lines.values():
            config[offset] = gpiod.LineSettings(
                direction=Direction.INPUT, active_low=self.cfg.inputs_active_low, bias=bias,
                debounce_period=timedelta(milliseconds=self.cfg.debounce_ms))
        try:
            self._request = gpiod.request_lines(chip, consumer=self.cfg.consumer, config=config)
        except OSError as exc:
            raise RelayError(f"gpio: cannot request lines {sorted(config)} on {chip}: {exc}") from exc

    def _close_port(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            with contextlib.suppress(Exception):  # already released or chip gone: nothing left to free
                request.release()

    def _write(self, on: bool) -> None:
        from gpiod.line import Value

        if self._request is None:
            self._open()
        self._request.set_value(self.cfg.line, Value.ACTIVE if on else Value.INACTIVE)

    def _read_inputs(self) -> dict[str, bool]:
        from gpiod.line import Value

        if self._request is None:
            self._open()
        return {name: self._request.get_value(off) == Value.ACTIVE for name, off in self._input_lines.items()}
