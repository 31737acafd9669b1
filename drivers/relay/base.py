"""What every relay driver shares: the Relay protocol, RelayError, input events and the pulse worker.

`pulse(ms)` switches on at once (a failed write raises RelayError right there) and a worker thread
switches off when the time is up; a pulse asked for while one runs extends it rather than starting a
second one. The relay is forced off at start, at close() and at interpreter exit. The same worker
polls the optional inputs (PASS from the turnstile, door sensor) and queues their changes as events.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from pydantic import Field

from drivers.config import DriverConfig

log = logging.getLogger(__name__)


class RelayError(RuntimeError):
    """A relay could not be switched (or read back); the gate turns this into an alarm."""


@dataclass(frozen=True)
class InputEvent:
    """An input changed: `name` is "pass" or "door", `active` its new state, `t` time.monotonic()."""

    name: str
    active: bool
    t: float


@dataclass(frozen=True)
class RelayStats:
    writes: int
    write_failures: int
    reconnects: int
    input_failures: int
    pulses: int
    last_error: str | None


class Relay(Protocol):
    def start(self) -> None: ...

    def pulse(self, ms: int) -> None: ...

    def set(self, on: bool) -> None: ...

    @property
    def state(self) -> bool: ...

    @property
    def pulsing(self) -> bool: ...

    def events(self) -> list[InputEvent]: ...

    def input_state(self, name: str) -> bool | None: ...

    @property
    def stats(self) -> RelayStats: ...

    def close(self) -> None: ...


class RelayConfigBase(DriverConfig):
    max_pulse_ms: int = Field(30_000, ge=1, le=600_000, description="Longest pulse accepted; longer asks "
                                                                    "fail.")
    input_poll_s: float = Field(0.02, gt=0, le=5, description="How often inputs are read, where there are "
                                                              "any.")


class BaseRelay:
    """Pulse timing, forced-off, reconnect-once-then-fail and input polling; subclasses do the I/O."""

    name = "relay"
    input_names: tuple[str, ...] = ()

    def __init__(self, cfg: RelayConfigBase) -> None:
        self.base_cfg = cfg
        self._lock = threading.RLock()  # state: pulse end, relay state
        self._io = threading.Lock()  # the port
        self._wake = threading.Condition(self._lock)
        self._state = False
        self._pulse_end: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: deque[InputEvent] = deque(maxlen=1000)
        self._inputs: dict[str, bool] = {}
        self._writes = self._write_failures = self._reconnects = self._input_failures = self._pulses = 0
        self._last_error: str | None = None
        self._started = False
        self._input_failing = False
        self._off_failing = False  # the end of a pulse could not switch the relay off

    # -- subclass hooks -----------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _close_port(self) -> None:
        raise NotImplementedError

    def _write(self, on: bool) -> None:
        raise NotImplementedError

    def _read_inputs(self) -> dict[str, bool]:
        return {}

    # -- public API ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the device and force the relay off; raises RelayError if either fails."""
        if self._started:
            return
        try:
            with self._io:
                self._open()
        except RelayError:
            raise
        except Exception as exc:
            raise RelayError(f"{self.name}: cannot open: {exc}") from exc
        self._started = True
        self._stop.clear()
        atexit.register(self._atexit)
        self._switch(False)
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.name}", daemon=True)
        self._thread.start()

    @property
    def state(self) -> bool:
        return self._state

    @property
    def pulsing(self) -> bool:
        return self._pulse_end is not None

    def pulse(self, ms: int) -> None:
        """Switch on now and off after `ms`; returns at once. A running pulse is extended, not repeated."""
        if not self._started:
            raise RelayError(f"{self.name}: pulse before start()")
        if not 0 < ms <= self.base_cfg.max_pulse_ms:
            raise RelayError(f"{self.name}: pulse of {ms} ms is outside 1..{self.base_cfg.max_pulse_ms} ms")
        with self._lock:
            if self._off_failing:
                raise RelayError(f"{self.name}: the relay could not be switched off ({self._last_error}); "
                                 "not pulsing again")
            end = time.monotonic() + ms / 1000
            self._pulses += 1
            if self._pulse_end is not None:
                self._pulse_end = max(self._pulse_end, end)
            else:
                self._switch(True)
                self._pulse_end = end
            self._wake.notify_all()

    def set(self, on: bool) -> None:
        """Switch on or off and stay so; cancels a running pulse."""
        if not self._started:
            raise RelayError(f"{self.name}: set() before start()")
        with self._lock:
            self._pulse_end = None
            self._switch(on)
            self._off_failing = False
            self._wake.notify_all()

    def events(self) -> list[InputEvent]:
        """Input changes since the last call, oldest first."""
        out: list[InputEvent] = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def input_state(self, name: str) -> bool | None:
        """The last read state of an input, None if this relay has no such input or it was never read."""
        return self._inputs.get(name)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no pulse is running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pulse_end is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    @property
    def stats(self) -> RelayStats:
        return RelayStats(writes=self._writes, write_failures=self._write_failures,
                          reconnects=self._reconnects, input_failures=self._input_failures,
                          pulses=self._pulses, last_error=self._last_error)

    def close(self) -> None:
        """Force the relay off (logged, not raised, if that fails) and release the device."""
        if not self._started:
            return
        self._stop.set()
        with self._lock:
            self._pulse_end = None
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        try:
            self._switch(False)
        except RelayError as exc:
            log.error("%s: could not force the relay off at close: %s", self.name, exc)
        with self._io:
            self._close_port()
        self._started = False
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception:  # at exit nothing may propagate; the message is the last thing we can do
            log.exception("%s: close at exit failed", self.name)

    # -- internals ----------------------------------------------------------------------------
    def _switch(self, on: bool) -> None:
        """Write with one reopen-and-retry; raises RelayError with what went wrong."""
        what = "on" if on else "off"
        with self._io:
            try:
                self._write(on)
            except Exception as first:
                self._write_failures += 1
                log.warning("%s: switching %s failed (%s); reopening and retrying once",
                            self.name, what, first)
                try:
                    self._close_port()
                    self._open()
                    self._reconnects += 1
                    self._write(on)
                except Exception as exc:
                    self._write_failures += 1
                    self._last_error = f"could not switch {what}: {exc}"
                    log.error("%s: could not switch the relay %s: %s", self.name, what, exc)
                    raise RelayError(f"{self.name}: could not switch the relay {what}: {exc}") from exc
            self._writes += 1
        self._state = on

    def _run(self) -> None:
        poll = self.base_cfg.input_poll_s if self.input_names else None
        next_poll = time.monotonic()
        off_retry_at = 0.0
        while not self._stop.is_set():
            with self._lock:
                now = time.monotonic()
                end = self._pulse_end
                if end is not None and now >= end and now >= off_retry_at:
                    try:
                        self._switch(False)
                        self._pulse_end = None
                        self._off_failing = False
                        self._wake.notify_all()
                    except RelayError:
                        self._off_failing = True
                        off_retry_at = now + 0.2  # keep trying: a relay stuck on is an open gate
                waits = [1.0]
                if self._pulse_end is not None:
                    waits.append(max(self._pulse_end, off_retry_at) - now)
                if poll is not None:
                    waits.append(next_poll - now)
                timeout = max(0.0, min(waits))
                if timeout > 0:
                    self._wake.wait(timeout)
            if poll is not None and time.monotonic() >= next_poll:
                ok = self._poll_inputs()
                next_poll = time.monotonic() + (poll if ok else max(poll, 0.25))

    def _poll_inputs(self) -> bool:
        try:
            with self._io:
                values = self._read_inputs()
        except Exception as exc:
            self._input_failures += 1
            if not self._input_failing:
                log.warning("%s: reading inputs failed: %s", self.name, exc)
                self._last_error = f"reading inputs failed: {exc}"
            self._input_failing = True
            with self._io:  # reopened lazily by the next read
                self._close_port()
            return False
        if self._input_failing:
            log.info("%s: inputs readable again", self.name)
            self._input_failing = False
            self._reconnects += 1
        now = time.monotonic()
        for name, active in values.items():
            if self._inputs.get(name) != active:
                if name in self._inputs:
                    self._events.append(InputEvent(name, active, now))
                self._inputs[name] = active
        return True
