"""`SerialThermalSensor`: the reader thread behind every serial thermal driver, and `SerialThermalConfig`,
the settings they all have.

A `SerialThermalSensor` owns one reader thread: it opens the port, sends the module's start command,
feeds the bytes to the module's frame decoder and keeps the latest good reading. It reconnects with
backoff (drivers.backoff) when the port vanishes (USB unplug), re-sends the start command when frames
stop, and reopens the port when they stay away. `change_speed` switches a module's UART speed from the
same thread: the command goes out at the old speed, the port is reopened at the new one, and without a
good frame there the driver goes back to the old speed.

Frames the decoder refuses (a bad checksum, or a good checksum on values that are no measurement: see
each decoder) are counted in `stats` and never delivered; they are logged as one warning line, at once
for the first and then at most once a minute with the count since the last line.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

import serial
from pydantic import Field

from drivers.backoff import Backoff
from drivers.heartbeat import DEFAULT_WITHIN_S, Heartbeat
from drivers.serial_port import open_serial
from drivers.thermal.config import ThermalConfigBase
from drivers.thermal.decoder import FrameDecoder
from drivers.thermal.reading import Reading, Sample, ThermalStats

log = logging.getLogger(__name__)
REFUSED_LOG_EVERY_S = 60.0  # refused frames: one log line at most this often, with the count held back


@dataclass
class _SpeedChange:
    """A speed change for the reader thread: send `commands`, then reopen the port at `baud`."""

    commands: list[bytes]
    baud: int
    sent: threading.Event = field(default_factory=threading.Event)
    sent_t: float = 0.0


class SerialThermalConfig(ThermalConfigBase):
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
        self._refused_logged = (0, 0)  # (checksum failures, implausible) when the last log line was written
        self._refused_log_at = float("-inf")

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
                            last_good_age_s=None if latest is None else time.monotonic() - latest.t,
                            last_refused=c.last_refused)

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
        # bytes queued before this session (a port kept open at the far end: a simulator, some adapters) are
        # no measurement of now: a calibration point must not average in the previous target's frames
        ser.reset_input_buffer()
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
            self._log_refused(now)
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

    def _log_refused(self, now: float) -> None:
        """One warning line for frames refused since the last one, at most every REFUSED_LOG_EVERY_S."""
        c = self._decoder.counters
        checksum = c.checksum_failures - self._refused_logged[0]
        implausible = c.implausible - self._refused_logged[1]
        if (checksum <= 0 and implausible <= 0) or now - self._refused_log_at < REFUSED_LOG_EVERY_S:
            return
        self._refused_logged = (c.checksum_failures, c.implausible)
        self._refused_log_at = now
        log.warning("thermal %s: %d frame(s) refused on %s: %d bad checksum, %d not a measurement%s; "
                    "not used", self.kind, checksum + implausible, self.cfg.port, checksum, implausible,
                    f" (last: {c.last_refused})" if implausible > 0 and c.last_refused else "")

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
