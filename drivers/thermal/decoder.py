"""Frame decoding for the serial thermal modules: the `FrameDecoder` protocol (bytes in any chunking,
good samples out, never raising on bad input), its `DecoderCounters`, and `HeaderFrameDecoder`, the
resynchronising decoder for fixed-length frames that begin with a header (the GY-MCU modules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from drivers.thermal.reading import Sample


@dataclass
class DecoderCounters:
    frames_ok: int = 0
    checksum_failures: int = 0
    resyncs: int = 0  # times bytes were skipped to find the next frame start
    bytes_skipped: int = 0
    implausible: int = 0  # frames with a good checksum but values no such sensor reports (not a measurement)
    last_refused: str | None = None  # why the latest implausible frame was refused, for the driver's log


class HeaderFrameDecoder:
    """Fixed-length frames that begin with a header: resynchronise on the header after garbage, check
    the checksum, then parse. A subclass sets `header` and `frame_len` and gives `checksum_ok` and
    `parse` (a str: the checksum matched but the frame is not a measurement, e.g. a value outside the
    sensor's datasheet range or the module's error word; the str says why)."""

    header: bytes = b""
    frame_len: int = 0

    def __init__(self) -> None:
        self.counters = DecoderCounters()
        self._buf = bytearray()

    def checksum_ok(self, frame: bytes) -> bool:
        raise NotImplementedError

    def parse(self, frame: bytes) -> Sample | str:
        raise NotImplementedError

    def reset(self) -> None:
        self._buf.clear()

    def _skip(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.counters.resyncs += 1
            self.counters.bytes_skipped += n

    def feed(self, data: bytes) -> list[Sample]:
        self._buf += data
        out: list[Sample] = []
        while True:
            start = self._buf.find(self.header)
            if start < 0:
                keep = len(self.header) - 1  # a tail that may be the beginning of a header
                self._skip(len(self._buf) - keep if len(self._buf) > keep else 0)
                return out
            self._skip(start)
            if len(self._buf) < self.frame_len:
                return out
            frame = bytes(self._buf[:self.frame_len])
            if not self.checksum_ok(frame):
                self.counters.checksum_failures += 1
                self._skip(1)
                continue
            sample = self.parse(frame)
            if isinstance(sample, str):
                self.counters.implausible += 1
                self.counters.last_refused = sample
                self._skip(1)
                continue
            del self._buf[:self.frame_len]
            self.counters.frames_ok += 1
            out.append(sample)


class FrameDecoder(Protocol):
    """A streaming decoder: bytes in any chunking, good samples out; never raises on bad input."""

    counters: DecoderCounters

    def feed(self, data: bytes) -> list[Sample]: ...

    def reset(self) -> None: ...
