"""`BaseRelay`: the worker thread and bookkeeping behind every relay driver; subclasses only do the I/O.

Drivers whose switching is a local write (LCUS, GPIO) switch on in the caller, so a failed write
raises RelayError right there; drivers whose switching is a round trip to a board (Modbus: write, then
read back) hand the switch-on to the worker thread, and a failure there is counted in `stats`
(write_failures, last_error: the gate's relay_fault alarm), the relay is forced off, and while it
cannot be switched off every further pulse() raises RelayError. Either way the worker thread switches
off when the time is up, and a pulse asked for while one is pending or running extends it rather than
starting a second one (`PulsePlan`). The relay is forced off at start, at close() and at interpreter
exit. A write that fails is retried once after reopening the device. The same worker polls the
optional inputs (PASS from the turnstile, door sensor) and queues their changes as events.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque

from drivers.relay.config import RelayConfigBase
from drivers.relay.protocol import InputEvent, RelayError, RelayStats, input_changes
from drivers.relay.pulse import PulsePlan

log = logging.getLogger(__name__)


class BaseRelay:
    """Pulse timing, forced-off, reconnect-once-then-fail and input polling; subclasses do the I/O."""

    name = "relay"
    input_names: tuple[str, ...] = ()
    switch_in_worker = False  # True: pulse() leaves the switch-on to the worker (a slow round trip)

    def __init__(self, cfg: RelayConfigBase) -> None:
        self.base_cfg = cfg
        self._lock = threading.RLock()  # state: pulse end, relay state
        self._io = threading.Lock()  # the port
        self._wake = threading.Condition(self._lock)
        self._state = False
        self._plan = PulsePlan()
        self._gen = 0  # set() counts up: a worker switch that raced with it must not undo it
        self._switching_off = False  # the worker is writing the end of a pulse
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: deque[InputEvent] = deque(maxlen=1000)
        self._inputs: dict[str, bool] = {}
        self._writes = self._write_failures = self._reconnects = self._input_failures = self._pulses = 0
        self._switch_failures = 0
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

    def _read_input_edges(self) -> list[InputEvent]:
        """Input changes the device timestamped itself since the last call (GPIO edge events), oldest
        first; read before `_read_inputs`, so a short PASS pulse between two polls is not lost."""
        return []

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
        """A pulse is pending, running or being switched off (or its switch-off is being retried)."""
        return self._plan.active or self._switching_off

    def pulse(self, ms: int) -> None:
        """Switch on now and off after `ms`; returns at once. A pending or running pulse is extended,
        not repeated."""
        if not self._started:
            raise RelayError(f"{self.name}: pulse before start()")
        if not 0 < ms <= self.base_cfg.max_pulse_ms:
            raise RelayError(f"{self.name}: pulse of {ms} ms is outside 1..{self.base_cfg.max_pulse_ms} ms")
        with self._lock:
            if self._off_failing:
                raise RelayError(f"{self.name}: the relay could not be switched off ({self._last_error}); "
                                 "not pulsing again")
            self._pulses += 1
            if self._plan.ask(time.monotonic(), ms) and not self.switch_in_worker:
                try:
                    self._switch(True)
                except RelayError:
                    self._plan.clear()
                    raise
                self._plan.switched_on(time.monotonic())
            self._wake.notify_all()

    def set(self, on: bool) -> None:
        """Switch on or off and stay so; cancels a pending or running pulse. Blocks for the write."""
        if not self._started:
            raise RelayError(f"{self.name}: set() before start()")
        with self._lock:
            self._gen += 1
            self._plan.clear()
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
            while self.pulsing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    @property
    def stats(self) -> RelayStats:
        return RelayStats(writes=self._writes, write_failures=self._write_failures,
                          reconnects=self._reconnects, input_failures=self._input_failures,
                          pulses=self._pulses, last_error=self._last_error,
                          switch_failures=self._switch_failures)

    def close(self) -> None:
        """Force the relay off (logged, not raised, if that fails) and release the device."""
        if not self._started:
            return
        self._stop.set()
        with self._lock:
            self._gen += 1
            self._plan.clear()
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
                    self._switch_failures += 1
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
            job = None
            with self._lock:
                now = time.monotonic()
                gen = self._gen
                if self._plan.due(now) and now >= off_retry_at:
                    self._plan.take_off()
                    self._switching_off = True
                    job = "off"
                elif self.switch_in_worker and self._plan.switch_on_owed:
                    job = "on"
                else:
                    waits = [1.0]
                    if self._plan.end is not None:
                        waits.append(max(self._plan.end, off_retry_at) - now)
                    if poll is not None:
                        waits.append(next_poll - now)
                    timeout = max(0.0, min(waits))
                    if timeout > 0:
                        self._wake.wait(timeout)
            # the I/O runs outside _lock: pulse() never waits for a round trip to the board
            if job == "on":
                self._worker_switch_on(gen)
            elif job == "off" and not self._worker_switch_off(gen):
                off_retry_at = time.monotonic() + 0.2  # keep trying: a relay stuck on is an open gate
            if poll is not None and time.monotonic() >= next_poll:
                ok = self._poll_inputs()
                next_poll = time.monotonic() + (poll if ok else max(poll, 0.25))

    def _worker_switch_on(self, gen: int) -> None:
        try:
            self._switch(True)
            ok = True
        except RelayError:  # counted and logged by _switch; the gate sees it in stats (relay_fault)
            ok = False
        with self._lock:
            if gen == self._gen:  # else set() or close() decided meanwhile, and wrote after us
                now = time.monotonic()
                if ok:
                    self._plan.switched_on(now)
                else:
                    self._plan.failed_on(now)  # state unknown: force it off
            self._wake.notify_all()

    def _worker_switch_off(self, gen: int) -> bool:
        """The end of a pulse; False if it must be retried."""
        try:
            self._switch(False)
            ok = True
        except RelayError:
            ok = False
        with self._lock:
            self._switching_off = False
            if gen != self._gen:
                ok = True  # set() or close() wrote after us: nothing of ours to retry
            elif ok:
                self._off_failing = False
            else:
                self._off_failing = True
                if self._plan.end is None:  # (a sync pulse may have switched on meanwhile)
                    self._plan.failed_off(time.monotonic())
            self._wake.notify_all()
        return ok

    def _poll_inputs(self) -> bool:
        try:
            with self._io:
                edges = self._read_input_edges()
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
        self._events.extend(input_changes(self._inputs, edges, values, time.monotonic()))
        return True
