"""OSDP framing as seen on the wire, for counting: which frames a control panel sent were whole and
addressed to this reader (its polls: `online`) and which were malformed (bad length, bad CRC or checksum,
junk between frames). libosdp parses and answers the same bytes itself; this only watches them, so a
garbled bus is counted and logged, never fatal.

A frame (IEC 60839-11-5): SOM 0x53, ADDR (bit 7 set on replies), LEN (16-bit little-endian, the whole
frame), CTRL (bit 2: a CRC-16 ends the frame, else a one-byte checksum; bit 3: a security block follows),
..., then CRC-16/AUG-CCITT (poly 0x1021, init 0x1D0F, little-endian) or the checksum (the frame's bytes
sum to 0 modulo 256). RS-485 drivers may send 0xFF marks before a frame; those are not junk.
"""

from __future__ import annotations

from dataclasses import dataclass

SOM = 0x53
MARK = 0xFF
MIN_LEN = 7  # SOM ADDR LEN LEN CTRL CMD + a one-byte checksum
MAX_LEN = 1440


def crc16(data: bytes) -> int:
    crc = 0x1D0F
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def frame(address: int, command: int, data: bytes = b"", seq: int = 0, use_crc: bool = True) -> bytes:
    """A well-formed plain frame (no security block): what a test or a tool sends."""
    length = 5 + 1 + len(data) + (2 if use_crc else 1)
    head = bytes([SOM, address, length & 0xFF, length >> 8, (seq & 3) | (4 if use_crc else 0), command]) + data
    if use_crc:
        return head + crc16(head).to_bytes(2, "little")
    return head + bytes([(-sum(head)) & 0xFF])


@dataclass
class Frame:
    address: int  # without the reply bit
    reply: bool
    command: int


class FrameCounter:
    """Feed it the bytes a port received; it keeps whole frames' count and the malformed ones'."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.malformed = 0
        self._in_junk = False

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while self._buf:
            if self._buf[0] != SOM:
                if self._buf[0] != MARK and not self._in_junk:
                    self.malformed += 1  # one count per run of junk, not per byte
                    self._in_junk = True
                del self._buf[0]
                continue
            if len(self._buf) < 5:
                break
            length = self._buf[2] | self._buf[3] << 8
            if not MIN_LEN <= length <= MAX_LEN:
                self._junk()
                continue
            if len(self._buf) < length:
                break
            raw = bytes(self._buf[:length])
            use_crc = bool(raw[4] & 4)
            ok = (crc16(raw[:-2]) == int.from_bytes(raw[-2:], "little")) if use_crc else sum(raw) & 0xFF == 0
            if not ok:
                self._junk()
                continue
            del self._buf[:length]
            self._in_junk = False
            self.frames += 1
            secure = bool(raw[4] & 8)
            command = raw[5 + raw[5]] if secure and 5 + raw[5] < length else raw[5]
            out.append(Frame(raw[1] & 0x7F, bool(raw[1] & 0x80), command))
        return out

    def _junk(self) -> None:
        """The SOM at the front starts no valid frame: count it and look for the next one."""
        self.malformed += 1
        self._in_junk = True
        del self._buf[0]
