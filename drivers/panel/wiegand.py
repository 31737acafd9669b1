"""Wiegand output (26 or 34 bits) bit-banged on two GPIO lines (D0, D1) through the `gpiod` v2 API.

Both lines are requested once, as outputs that start inactive (idle high on a direct wiring; the pulse
is the kernel's "active" value, so `active_low` decides the voltage and an inverting level shifter is
`active_low = false`). `send_card` builds the frame at once (a card the format cannot carry is a
PanelError in the caller) and queues it for the `panel-wiegand` thread, which plays it
(drivers.panel.wiegand_frame.play). Wiegand has no reply: the panel drives its own lock, and the gate
cannot tell whether it is listening (`online` is whether the lines are held).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from drivers.panel.config import PanelConfigBase
from drivers.panel.protocol import Indicators, PanelCommand, PanelError, PanelStats
from drivers.panel.wiegand_frame import Line, frame_bits, play, pulse_train

if TYPE_CHECKING:
    import gpiod

log = logging.getLogger(__name__)


class WiegandConfig(PanelConfigBase):
    type: Literal["wiegand"] = Field("wiegand", description="Wiegand reader output on two GPIO lines.")
    chip: str = Field("/dev/gpiochip0", description="GPIO chip device.")
    d0_line: int = Field(23, ge=0, le=1023, description="Line offset of D0 (the green wire: zeros).")
    d1_line: int = Field(24, ge=0, le=1023, description="Line offset of D1 (the white wire: ones).")
    bits: Literal[26, 34] = Field(26, description="Frame format: 26 (8-bit facility, 16-bit card) or 34 "
                                  "(32-bit card).")
    facility_code: int = Field(0, ge=0, le=255, description="Facility code sent in 26-bit frames.")
    pulse_us: int = Field(50, ge=20, le=100, description="Pulse width in microseconds.")
    interval_us: int = Field(2000, ge=200, le=20_000, description="From one pulse's start to the next's, "
                                                                  "in microseconds.")
    active_low: bool = Field(True, description="A pulse pulls the line low (direct or non-inverting "
                             "wiring); false behind an inverting transistor stage.")
    consumer: str = Field("edge-gate-wiegand", min_length=1, max_length=31, description="Name shown by "
                                                                                        "gpioinfo.")

    @model_validator(mode="after")
    def _lines(self) -> WiegandConfig:
        if self.d0_line == self.d1_line:
            raise ValueError(f"d0_line and d1_line must be different offsets, both are {self.d0_line}")
        if self.pulse_us * 2 > self.interval_us:
            raise ValueError(f"interval_us ({self.interval_us}) must be at least twice pulse_us ({self.pulse_us})")
        return self


def line_settings(cfg: WiegandConfig) -> dict[int, gpiod.LineSettings]:
    """The gpiod request: D0 and D1 as outputs, inactive (idle) from the moment they are requested."""
    import gpiod
    from gpiod.line import Direction, Value

    return {offset: gpiod.LineSettings(direction=Direction.OUTPUT, active_low=cfg.active_low,
                                       output_value=Value.INACTIVE) for offset in (cfg.d0_line, cfg.d1_line)}


class WiegandPanel:
    name = "wiegand"

    def __init__(self, cfg: WiegandConfig) -> None:
        self.cfg = cfg
        self.on_command: Callable[[PanelCommand], None] | None = None
        self._indicators = Indicators()
        self._request: Any = None
        self._queue: queue.Queue[tuple[int, ...] | None] = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sent = self._failed = 0
        self._error: str | None = None
        self.last_frame_ns: int | None = None  # how long the last frame took to play

    def start(self) -> None:
        import gpiod

        if not os.path.exists(self.cfg.chip):
            raise PanelError(f"wiegand: chip {self.cfg.chip} does not exist (no GPIO character device here; "
                             f"`ls /dev/gpiochip*` lists the chips)")
        if not gpiod.is_gpiochip_device(self.cfg.chip):
            raise PanelError(f"wiegand: {self.cfg.chip} is not a GPIO character device")
        settings = line_settings(self.cfg)
        try:
            self._request = gpiod.request_lines(self.cfg.chip, consumer=self.cfg.consumer,
                                                config=dict(settings.items()))
        except OSError as exc:
            raise PanelError(f"wiegand: cannot request lines {sorted(settings)} on {self.cfg.chip}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="panel-wiegand", daemon=True)
        self._thread.start()

    def send_card(self, card: int) -> None:
        try:
            bits = frame_bits(card, self.cfg.bits, self.cfg.facility_code)
        except ValueError as exc:
            with self._lock:
                self._failed += 1
            raise PanelError(f"wiegand: {exc}") from exc
        try:
            self._queue.put_nowait(bits)
        except queue.Full as exc:
            with self._lock:
                self._failed += 1
            raise PanelError("wiegand: 8 frames are already waiting; card not sent") from exc

    def write_line(self, line: Line, active: bool) -> None:
        from gpiod.line import Value

        offset = self.cfg.d0_line if line == "d0" else self.cfg.d1_line
        self._request.set_value(offset, Value.ACTIVE if active else Value.INACTIVE)

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # real-time priority where allowed: steadier pulses
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        while (bits := self._queue.get()) is not None:
            try:
                self.last_frame_ns = play(pulse_train(bits, self.cfg.pulse_us, self.cfg.interval_us), self.write_line)
                with self._lock:
                    self._sent += 1
            except (OSError, RuntimeError, AttributeError) as exc:  # the chip went away mid-frame
                log.error("wiegand: frame not sent: %s", exc)
                with self._lock:
                    self._failed += 1
                    self._error = str(exc)

    @property
    def online(self) -> bool:
        return self._request is not None and self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> PanelStats:
        with self._lock:
            return PanelStats(cards_sent=self._sent, send_failures=self._failed, last_error=self._error)

    @property
    def indicators(self) -> Indicators:
        return self._indicators

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(5)
        request, self._request = self._request, None
        if request is not None:
            with contextlib.suppress(Exception):
                request.release()
