"""An independent OSDP control panel on a real pty pair, for the OSDP tests: the `osdp` package from PyPI
(ryanhz/osdp-python: its own framing, CRC, secure channel and reply parsing) on the master side, the
gate's PD (libosdp) opening the slave by its path as it opens a USB RS-485 adapter."""

from __future__ import annotations

import os
import select
import tty
from typing import Any

from osdp._connection import OsdpConnection
from osdp._control_panel import ControlPanel
from osdp._types import RawCardData

CUID = bytes.fromhex("a7e6010001000000")  # the cUID libosdp makes from the PD's id (vendor A7E6, model 1, ...)


class PtyMaster(OsdpConnection):  # type: ignore[misc]
    """The CP's end of the pty pair: the bytes the gate's serial port sends and receives."""

    def __init__(self, fd: int) -> None:
        self.fd, self._open = fd, True

    @property
    def baud_rate(self) -> int:
        return 9600

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, buf: bytes) -> None:
        os.write(self.fd, buf)

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], 0.2)
        return os.read(self.fd, size) if ready and self._open else b""


class Cp(ControlPanel):  # type: ignore[misc]
    def __init__(self, master_key: bytes | None = None) -> None:
        super().__init__(master_key)
        self.raw: list[RawCardData] = []

    def on_raw_card_data_reply_received(self, address: int, raw_card_data: RawCardData) -> None:
        self.raw.append(raw_card_data)


class Bus:
    """A pty pair: the gate's PD on the slave (opened by path, as a USB RS-485 adapter), the CP on the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.cp: Cp | None = None
        self.cid: Any = None

    def connect(self, address: int = 1, master_key: bytes | None = None) -> Cp:
        self.cp = Cp(master_key)
        self.cid = self.cp.start_connection(PtyMaster(self.master))
        self.cp.add_device(self.cid, address, True, master_key is not None)
        return self.cp

    def stop_polling(self) -> None:
        if self.cp is not None:
            self.cp.shutdown()
            self.cp = None

    def close(self) -> None:
        self.stop_polling()
        for fd in (self.master, self.slave):
            os.close(fd)


def bits_of(raw: RawCardData) -> list[int]:
    """The frame's bits, most significant first, as the CP received them."""
    return [int(b) for b in "".join(f"{x:08b}" for x in raw.data)[:raw.bit_count]]


def acked(send: Any) -> bool:
    """A CP command answered with an ACK; a NAK or a timeout (the CP resynchronising) is False: try again."""
    try:
        return bool(send())
    except TimeoutError:
        return False
