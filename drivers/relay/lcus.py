"""LCUS-1 style CH340 USB relay boards (1/2/4/8 channels), 9600 8N1, frame A0 ch state sum.

`A0 01 01 A2` switches channel 1 on, `A0 01 00 A1` off; sum = low byte of A0 + ch + state. The
boards do not answer, so a write that reaches the port is all the confirmation there is; they have no
inputs (wire PASS, door, fire and exit to GPIO or a Modbus board); a second channel can drive a siren
relay (`siren_channel`).
"""

from __future__ import annotations

import contextlib
from typing import Literal

import serial
from pydantic import Field, model_validator

from drivers.relay.config import RelayConfigBase
from drivers.relay.worker import BaseRelay
from drivers.serial_port import open_serial


def lcus_frame(channel: int, on: bool) -> bytes:
    """The 4-byte command for one channel."""
    if not 1 <= channel <= 255:
        raise ValueError("LCUS channel must be 1..255")
    state = 1 if on else 0
    return bytes([0xA0, channel, state, (0xA0 + channel + state) & 0xFF])


class LcusConfig(RelayConfigBase):
    type: Literal["lcus"] = Field("lcus", description="LCUS-1 style CH340 serial relay board.")
    port: str = Field("/dev/ttyUSB0", description="Serial port of the board.")
    baud: int = Field(9600, ge=1200, le=115200, description="Serial speed (the boards use 9600).")
    channel: int = Field(1, ge=1, le=8, description="Relay channel (1 on single-channel boards).")
    siren_channel: int | None = Field(None, ge=1, le=8, description="Channel of the siren relay (boards with "
                                      "2 or more channels), or unset.")

    @model_validator(mode="after")
    def _distinct(self) -> LcusConfig:
        if self.siren_channel == self.channel:
            raise ValueError("siren_channel must not be the turnstile's channel")
        return self


class LcusRelay(BaseRelay):
    name = "lcus"

    def __init__(self, cfg: LcusConfig) -> None:
        super().__init__(cfg)
        self.cfg = cfg
        self._serial: serial.Serial | None = None
        self.has_siren = cfg.siren_channel is not None

    def _open(self) -> None:
        self._serial = open_serial(self.cfg.port, self.cfg.baud, timeout=0.1)

    def _close_port(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                ser.close()

    def _write(self, on: bool) -> None:
        self._send(lcus_frame(self.cfg.channel, on))

    def _write_siren(self, on: bool) -> None:
        assert self.cfg.siren_channel is not None
        self._send(lcus_frame(self.cfg.siren_channel, on))

    def _send(self, frame: bytes) -> None:
        if self._serial is None:
            self._open()
        assert self._serial is not None
        written = self._serial.write(frame)
        self._serial.flush()
        if written != len(frame):
            raise OSError(f"wrote {written} of {len(frame)} bytes")
