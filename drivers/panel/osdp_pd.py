"""OSDP reader output: the gate as an OSDP peripheral device (PD) on RS-485, through libosdp (`osdp_sys`).

The control panel (CP) polls this PD; on a grant the gate queues a card read, which libosdp sends as the
answer to the next poll: `osdp_RAW` (the card as a Wiegand frame of `bits` bits,
drivers.panel.wiegand_frame; libosdp 3 no longer sends `osdp_FMT`, so ASCII card reads are not offered).
Commands from the CP (LED, buzzer, output) come in on libosdp's command callback and are handed to
`on_command` (the gate obeys an output and shows the LED and buzzer). The secure channel uses the SCBK from
`scbk_file` (32 hex digits; a relative name is looked up in $CREDENTIALS_DIRECTORY): never in the config or
the repository. Without one the PD answers in the clear, unless `secure_only`. The bytes on the port are
also watched (drivers.panel.osdp_frame): frames addressed to this PD are its polls (`online` while the last
is younger than `offline_after_s`), malformed frames are counted. libosdp's `osdp` Python package is not
used (another PyPI project installs a package of the same name): `osdp_sys` is libosdp's own extension
module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from drivers.panel.config import PanelConfigBase
from drivers.panel.osdp_frame import FrameCounter
from drivers.panel.protocol import Indicators, PanelCommand, PanelError, PanelStats
from drivers.panel.wiegand_frame import frame_bits

log = logging.getLogger(__name__)
COLOURS = ("off", "red", "green", "amber", "blue", "magenta", "cyan", "white")  # OSDP colour codes 0-7


class OsdpConfig(PanelConfigBase):
    type: Literal["osdp"] = Field("osdp", description="OSDP peripheral device (reader) on an RS-485 port.")
    port: str = Field("/dev/gate-osdp", description="Serial port of the RS-485 adapter.")
    baud: Literal[9600, 19200, 38400, 57600, 115200] = Field(9600, description="Bus speed (the panel's).")
    address: int = Field(1, ge=0, le=126, description="This reader's OSDP address on the bus.")
    bits: Literal[26, 34] = Field(26, description="Wiegand frame size for raw card reads.")
    facility_code: int = Field(0, ge=0, le=255, description="Facility code of 26-bit raw card reads.")
    scbk_file: str | None = Field(None, description="File holding the secure channel base key (32 hex "
                                  "digits); relative: in $CREDENTIALS_DIRECTORY. Unset: no secure channel.")
    secure_only: bool = Field(False, description="Refuse to talk to a panel outside the secure channel.")
    offline_after_s: float = Field(3.0, gt=0, le=60, description="The panel is offline (panel_offline, "
                                   "fallback) when it has not polled this reader for this long.")
    refresh_s: float = Field(0.01, gt=0, le=0.05, description="How often libosdp is run (at most 50 ms).")


def read_scbk(name: str, environ: dict[str, str] | None = None) -> bytes:
    """The 16-byte key in `name` (hex text); PanelError naming the file and the fix."""
    env = os.environ if environ is None else environ
    path = Path(name)
    if not path.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / path
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise PanelError(f"osdp: cannot read the SCBK file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 16:
        raise PanelError(f"osdp: {path} must hold the SCBK as 32 hex digits (16 bytes), e.g. from "
                         "`openssl rand -hex 16`")
    return key


def card_event(cfg: OsdpConfig, card: int) -> dict[str, Any]:
    """libosdp's card-read event for `card`; ValueError when the frame cannot carry it."""
    import osdp_sys

    bits = frame_bits(card, cfg.bits, cfg.facility_code)
    padded = list(bits) + [0] * (-len(bits) % 8)
    data = bytes(int("".join(map(str, padded[i:i + 8])), 2) for i in range(0, len(padded), 8))
    return {"event": osdp_sys.EVENT_CARDREAD, "reader_no": 0, "direction": 0,
            "format": osdp_sys.CARD_FMT_RAW_WIEGAND, "length": len(bits), "data": data}


def command_of(cmd: dict[str, Any], now: float) -> PanelCommand | None:
    """A libosdp command dict as a PanelCommand (None for the ones the gate does not act on)."""
    import osdp_sys

    kind = cmd.get("command")
    if kind == osdp_sys.CMD_LED:
        colour = int(cmd.get("on_color", 0) or 0)
        name = COLOURS[colour] if 0 <= colour < len(COLOURS) else f"colour {colour}"
        return PanelCommand("led", colour != 0, now, colour=name, ms=int(cmd.get("timer_count", 0) or 0) * 100,
                            number=int(cmd.get("led_number", 0) or 0))
    if kind == osdp_sys.CMD_BUZZER:
        return PanelCommand("buzzer", int(cmd.get("control_code", 0) or 0) == 2, now,
                            ms=int(cmd.get("on_count", 0) or 0) * 100)
    if kind == osdp_sys.CMD_OUTPUT:
        code = int(cmd.get("control_code", 0) or 0)  # 1/3: off, 2/4: on (permanent/until timer), 5/6 timed
        return PanelCommand("output", code in (2, 4, 5), now, ms=int(cmd.get("timer_count", 0) or 0) * 100,
                            number=int(cmd.get("output_no", 0) or 0))
    return None


class _Channel:
    """libosdp's channel over the serial port: non-blocking reads, every byte also shown to the counter."""

    def __init__(self, port: Any, on_bytes: Callable[[bytes], None]) -> None:
        self.port, self.on_bytes, self.id = port, on_bytes, 0

    def read(self, max_bytes: int) -> bytes:
        data: bytes = self.port.read(max_bytes)
        if data:
            self.on_bytes(data)
        return data

    def write(self, buf: bytes) -> int:
        return int(self.port.write(buf) or 0)

    def flush(self) -> None:
        self.port.reset_input_buffer()


class OsdpPanel:
    name = "osdp"

    def __init__(self, cfg: OsdpConfig) -> None:
        self.cfg = cfg
        self.on_command: Callable[[PanelCommand], None] | None = None
        self._indicators = Indicators()
        self._lock = threading.Lock()
        self._counter = FrameCounter()
        self._last_poll: float | None = None
        self._port: Any = None
        self._ctx: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = self._failed = self._commands = 0
        self._error: str | None = None
        self.secure = False

    def start(self) -> None:
        import osdp_sys
        import serial

        scbk = read_scbk(self.cfg.scbk_file) if self.cfg.scbk_file else None
        try:
            self._port = serial.Serial(self.cfg.port, self.cfg.baud, timeout=0, write_timeout=1)
        except (serial.SerialException, OSError) as exc:
            raise PanelError(f"osdp: cannot open {self.cfg.port}: {exc}") from exc
        osdp_sys.set_loglevel(osdp_sys.LOG_WARNING)
        caps = [{"function_code": osdp_sys.CAP_READER_LED_CONTROL, "compliance_level": 1, "num_items": 1},
                {"function_code": osdp_sys.CAP_READER_AUDIBLE_OUTPUT, "compliance_level": 1, "num_items": 1},
                {"function_code": osdp_sys.CAP_OUTPUT_CONTROL, "compliance_level": 1, "num_items": 1},
                {"function_code": osdp_sys.CAP_CARD_DATA_FORMAT, "compliance_level": 1, "num_items": 1},
                {"function_code": osdp_sys.CAP_COMMUNICATION_SECURITY, "compliance_level": 1 if scbk else 0,
                 "num_items": 1}]
        info = {"name": "edge-gate", "address": self.cfg.address, "scbk": scbk,
                "flags": osdp_sys.FLAG_ENFORCE_SECURE if self.cfg.secure_only else 0,
                "channel": _Channel(self._port, self._watch), "version": 1, "model": 1, "vendor_code": 0x00E6A7,
                "serial_number": 1, "firmware_version": 1}
        try:
            self._ctx = osdp_sys.PeripheralDevice(info, capabilities=caps)
        except Exception as exc:  # libosdp's setup error is a plain exception
            self._close_port()
            raise PanelError(f"osdp: libosdp refused the reader's setup: {exc}") from exc
        self._ctx.set_command_callback(self._on_libosdp_command)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="panel-osdp", daemon=True)
        self._thread.start()

    def _watch(self, data: bytes) -> None:
        frames = self._counter.feed(data)
        if any(f.address == self.cfg.address and not f.reply for f in frames):
            self._last_poll = time.monotonic()

    def _on_libosdp_command(self, cmd: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        try:
            pc = command_of(cmd, time.monotonic())
            if pc is not None:
                with self._lock:
                    self._commands += 1
                    self._indicators.apply(pc)
                if self.on_command is not None:
                    self.on_command(pc)
        except Exception:  # a failing listener must not take libosdp's thread down
            log.exception("osdp: handling the panel's command %r failed", cmd)
        return 0, None

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.refresh_s):
            try:
                self._ctx.refresh()
                self.secure = bool(self._ctx.is_sc_active())
            except Exception as exc:  # the adapter unplugged: keep counting time, the panel goes offline
                if self._error != str(exc):
                    log.error("osdp: %s", exc)
                with self._lock:
                    self._error = str(exc)

    def send_card(self, card: int) -> None:
        try:
            event = card_event(self.cfg, card)
        except ValueError as exc:
            with self._lock:
                self._failed += 1
            raise PanelError(f"osdp: {exc}") from exc
        ctx = self._ctx
        if ctx is None:
            raise PanelError("osdp: not started")
        try:
            ctx.submit_event(event)
        except Exception as exc:
            with self._lock:
                self._failed += 1
            raise PanelError(f"osdp: libosdp did not queue the card read: {exc}") from exc
        with self._lock:
            self._sent += 1

    @property
    def online(self) -> bool:
        last = self._last_poll
        return self._thread is not None and last is not None and time.monotonic() - last <= self.cfg.offline_after_s

    @property
    def stats(self) -> PanelStats:
        last = self._last_poll
        with self._lock:
            return PanelStats(cards_sent=self._sent, send_failures=self._failed,
                              malformed_frames=self._counter.malformed, commands=self._commands, last_error=self._error,
                              last_poll_age_s=None if last is None else time.monotonic() - last)

    @property
    def indicators(self) -> Indicators:
        return self._indicators

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        self._ctx = None
        self._close_port()
