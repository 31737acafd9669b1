"""What every thermal sensor driver shares: the Reading, the sensor protocol, and the serial reader thread.

A `SerialThermalSensor` owns one reader thread: it opens the port, sends the module's start command,
feeds the bytes to the module's frame decoder and keeps the latest good reading. It reconnects with
backoff when the port vanishes (USB unplug), re-sends the start command when frames stop, and reopens
the port when they stay away. `change_speed` switches a module's UART speed from the same thread: the
command goes out at the old speed, the port is reopened at the new one, and without a good frame
there the driver goes back to the old speed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import serial
from numpy.typing import NDArray
from pydantic import Field

from drivers.backoff import Backoff
from drivers.config import DriverConfig
from drivers.heartbeat import DEFAULT_WITHIN_S, Heartbeat
from drivers.serial_port import open_serial

log = logging.getLogger(__name__)

Frame = NDArray[np.float32]
FRAME_SHAPE = (24, 32)


@dataclass(frozen=True)
class Reading:
    """One good reading: object and ambient temperature (C), arrival time (time.monotonic), array frame."""

    object_c: float
    ambient_c: float  # NaN when the sensor does not report it (plain ASCII sensors)
    t: float
    frame: Frame | None = None

    def as_dict(self, with_frame: bool = True) -> dict[str, object]:
        """JSON-ready: NaN ambient becomes None; the frame a list of 24 rows of 32 values."""
        out: dict[str, object] = {
            "object_c": round(self.object_c, 2),
            "ambient_c": round(self.ambient_c, 2) if math.isfinite(self.ambient_c) else None,
            "t": self.t,
        }
        if with_frame and self.frame is not None:
            out["frame"] = [[round(float(v), 2) for v in row] for row in self.frame]
        return out


@dataclass(frozen=True)
class Sample:
    """A decoded frame, before it gets its arrival time."""

    object_c: float
    ambient_c: float
    frame: Frame | None = None


@dataclass
class DecoderCounters:
    frames_ok: int = 0
    checksum_failures: int = 0
    resyncs: int = 0  # times bytes were skipped to find the next frame start
    bytes_skipped: int = 0
    implausible: int = 0  # frames with a good checksum but values no such sensor reports


class HeaderFrameDecoder:
    """Fixed-length frames that begin with a header: resynchronise on the header after garbage, check
    the checksum, then parse. A subclass sets `header` and `frame_len` and gives `checksum_ok` and
    `parse` (None: the checksum matched but no such sensor reports these values)."""

    header: bytes = b""
    frame_len: int = 0

    def __init__(self) -> None:
        self.counters = DecoderCounters()
        self._buf = bytearray()

    def checksum_ok(self, frame: bytes) -> bool:
        raise NotImplementedError

    def parse(self, frame: bytes) -> Sample | None:
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
            if sample is None:
                self.counters.implausible += 1
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


@dataclass(frozen=True)
class ThermalStats:
    frames_ok: int
    checksum_failures: int
    resyncs: int
    bytes_skipped: int
    implausible: int
    reconnects: int
    connected: bool
    last_error: str | None
    last_good_age_s: float | None  # None before the first good reading


@dataclass
class _SpeedChange:
    """A speed change for the reader thread: send `commands`, then reopen the port at `baud`."""

    commands: list[bytes]
    baud: int
    sent: threading.Event = field(default_factory=threading.Event)
    sent_t: float = 0.0


class ThermalSensor(Protocol):
    """A thermal sensor: `read()` is the latest good reading (None if none is fresh)."""

    def start(self) -> None: ...

    def read(self) -> Reading | None: ...

    def wait(self, timeout: float, newer_than: float | None = None) -> Reading | None: ...

    @property
    def stats(self) -> ThermalStats: ...

    def close(self) -> None: ...

    @property
    def heartbeat(self) -> Heartbeat: ...


class SerialThermalConfig(DriverConfig):
    """Settings every serial thermal driver has."""

    port: str = Field("/dev/ttyUSB0", description="Serial port (a /dev/serial/by-id/... link survives "
                                                  "replugging).")
    baud: int = Field(9600, ge=1200, le=4_000_000, description="Serial speed (8N1).")
    reconnect_min_s: float = Field(0.2, gt=0, le=60, description="First delay before reopening a vanished "
                                                                 "port.")
    reconnect_max_s: float = Field(5.0, gt=0, le=600, description="Longest delay between reopen attempts.")
    stale_after_s: float = Field(2.0, gt=0, le=600, description="Re-send the start command after this long "
                                 "without a good frame (a module that was power-cycled stops streaming).")
    reopen_after_s: float = Field(6.0, gt=0, le=3600, description="Close and reopen the port after this long "
                                  "without a good frame.")
    max_age_s: float = Field(2.0, gt=0, le=3600, description="read() returns nothing when the latest good "
                             "reading is older than this, so a vanished sensor never supplies a stale value.")


class SerialThermalSensor:
    """The reader thread and bookkeeping; subclasses give the decoder and the commands."""

    kind = "serial"

    def __init__(self, cfg: SerialThermalConfig) -> None:
        self.cfg = cfg
        self._decoder = self.make_decoder()
        self._cond = threading.Condition()
        self._latest: Reading | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: serial.Serial | None = None
        self._reconnects = 0
        self._connected = False
        self._last_error: str | None = None
        self._opened_once = False
        self._baud = cfg.baud  # the speed the port is opened at (changed by change_speed)
        self._speed_change: _SpeedChange | None = None
        self._reopen_now = False
        self.heartbeat = Heartbeat()

    # -- subclass hooks -----------------------------------------------------------------------
    def make_decoder(self) -> FrameDecoder:
        raise NotImplementedError

    def start_commands(self) -> list[bytes]:
        """Bytes sent after opening the port and when frames go stale."""
        return []

    def poll_command(self) -> bytes | None:
        """Bytes sent every `poll_interval_s` (query mode), or None (the module streams)."""
        return None

    poll_interval_s = 0.1

    # -- public API ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"thermal-{self.kind}", daemon=True)
        self._thread.start()

    def read(self) -> Reading | None:
        with self._cond:
            latest = self._latest
        if latest is None or time.monotonic() - latest.t > self.cfg.max_age_s:
            return None
        return latest

    def wait(self, timeout: float, newer_than: float | None = None) -> Reading | None:
        """Block until a good reading arrives that is newer than `newer_than` (default: now)."""
        after = time.monotonic() if newer_than is None else newer_than
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.t <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._latest

    @property
    def stats(self) -> ThermalStats:
        c = self._decoder.counters
        with self._cond:
            latest = self._latest
        return ThermalStats(frames_ok=c.frames_ok, checksum_failures=c.checksum_failures, resyncs=c.resyncs,
                            bytes_skipped=c.bytes_skipped, implausible=c.implausible,
                            reconnects=self._reconnects, connected=self._connected,
                            last_error=self._last_error,
                            last_good_age_s=None if latest is None else time.monotonic() - latest.t)

    @property
    def baud(self) -> int:
        """The speed the driver talks to the module at now."""
        return self._baud

    def change_speed(self, commands: list[bytes], baud: int, timeout: float = 3.0) -> bool:
        """Send `commands` (the module's baud-rate command) at the current speed, reopen the port at
        `baud` and wait for a good frame there. Without one within `timeout` (the module ignored the
        command, or applies it only after a power cycle) the driver goes back to the old speed. True if
        the module answered at the new speed. Needs start(); blocks up to about 2 x timeout."""
        if self._thread is None:
            raise RuntimeError(f"thermal {self.kind}: change_speed() before start()")
        old = self._baud
        sent_t = self._request_speed(commands, baud, timeout)
        if sent_t is None:
            return False
        if self.wait(timeout, newer_than=sent_t) is not None:
            log.info("thermal %s: now at %s baud on %s", self.kind, baud, self.cfg.port)
            return True
        self._error(f"no good frame at {baud} baud after the speed command; back at {old} baud")
        log.warning("thermal %s: no good frame at %s baud; going back to %s baud", self.kind, baud, old)
        if self._request_speed([], old, timeout) is None:
            self._baud = old  # the port is not open now: the next open uses the old speed
        return False

    def _request_speed(self, commands: list[bytes], baud: int, timeout: float) -> float | None:
        """Hand a speed change to the reader thread; the time it was done, None if the port is not open."""
        change = _SpeedChange(commands, baud)
        with self._cond:
            self._speed_change = change
        if change.sent.wait(timeout):
            return change.sent_t
        with self._cond:
            if self._speed_change is change:
                self._speed_change = None
        self._error(f"could not send the speed command: {self.cfg.port} is not open ({self._last_error})")
        log.warning("thermal %s: speed change to %s baud not sent: %s is not open", self.kind, baud,
                    self.cfg.port)
        return None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._close_port()

    # -- the reader thread --------------------------------------------------------------------
    def _close_port(self) -> None:
        ser, self._serial = self._serial, None
        self._connected = False
        if ser is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                ser.close()

    def _error(self, message: str) -> None:
        self._last_error = message

    def _run(self) -> None:
        backoff = Backoff(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
        open_failing = False
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                self._serial = open_serial(self.cfg.port, self._baud, timeout=0.05)
            except (OSError, serial.SerialException, ValueError) as exc:
                self._error(f"cannot open {self.cfg.port}: {exc}")
                delay = backoff.failed()
                # the first failure is a warning; repeating it every retry would flood the log
                log.log(logging.DEBUG if open_failing else logging.WARNING,
                        "thermal %s: cannot open %s (%s); retrying in %.1f s",
                        self.kind, self.cfg.port, exc, delay)
                open_failing = True
                self.heartbeat.beat(delay + DEFAULT_WITHIN_S)
                self._stop.wait(delay)
                continue
            open_failing = False
            if self._opened_once and not self._reopen_now:
                self._reconnects += 1
            self._reopen_now = False
            self._opened_once = True
            self._connected = True
            self._decoder.reset()
            log.info("thermal %s: reading %s at %s baud", self.kind, self.cfg.port, self._baud)
            try:
                if self._session(backoff):
                    backoff.reset()
            except (OSError, serial.SerialException) as exc:
                self._error(f"{self.cfg.port} failed: {exc}")
                log.warning("thermal %s: %s failed (%s); reconnecting", self.kind, self.cfg.port, exc)
            self._close_port()
            if self._reopen_now:  # a speed change: reopen at once, at the new speed
                continue
            if not self._stop.is_set():
                delay = backoff.failed()
                self.heartbeat.beat(delay + DEFAULT_WITHIN_S)
                self._stop.wait(delay)

    def _session(self, backoff: Backoff) -> bool:
        """Read one open port until it fails or goes silent; True if it delivered good frames."""
        ser = self._serial
        assert ser is not None
        opened = last_good = last_kick = time.monotonic()
        good = False
        self._send(ser, self.start_commands())
        poll = self.poll_command()
        next_poll = opened
        while not self._stop.is_set():
            self.heartbeat.beat()
            with self._cond:
                change, self._speed_change = self._speed_change, None
            if change is not None:
                self._send(ser, change.commands)  # flush(): drained at the old speed before the reopen
                if change.commands:
                    self._stop.wait(0.05)  # give the module time to act on it
                self._baud = change.baud
                self._reopen_now = True
                change.sent_t = time.monotonic()
                change.sent.set()
                return good
            now = time.monotonic()
            if poll is not None and now >= next_poll:
                self._send(ser, [poll])
                next_poll = now + self.poll_interval_s
            data = ser.read(max(1, ser.in_waiting))
            now = time.monotonic()
            if data:
                samples = self._decoder.feed(data)
                if samples:
                    if not good:
                        backoff.reset()
                    good = True
                    last_good = last_kick = now
                    self._publish(samples[-1], now)
            if now - last_good > self.cfg.reopen_after_s:
                self._error(f"no good frame from {self.cfg.port} for {now - last_good:.1f} s")
                log.warning("thermal %s: no good frame for %.1f s; reopening %s", self.kind, now - last_good,
                            self.cfg.port)
                return good
            if now - last_kick > self.cfg.stale_after_s:
                log.info("thermal %s: no frame for %.1f s; re-sending the start command", self.kind,
                         now - last_good)
                self._send(ser, self.start_commands())
                last_kick = now
        return good

    def _send(self, ser: serial.Serial, commands: list[bytes]) -> None:
        for command in commands:
            ser.write(command)
        if commands:
            ser.flush()

    def _publish(self, sample: Sample, now: float) -> None:
        reading = Reading(object_c=sample.object_c, ambient_c=sample.ambient_c, t=now, frame=sample.frame)
        with self._cond:
            self._latest = reading
            self._cond.notify_all()
