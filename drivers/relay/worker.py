"""`BaseRelay`: the worker thread and bookkeeping behind every relay driver; subclasses only do the I/O.

Drivers whose switching is a local write (LCUS, GPIO) switch on in the caller, so a failed write
raises RelayError right there; drivers whose switching is a round trip to a board (Modbus: write, then
read back) hand the switch-on to the worker thread, and a failure there is counted in `stats`
(write_failures, last_error: the gate's relay_fault alarm), the relay is forced off, and while it
cannot be switched off every further pulse() raises RelayError. Either way the worker thread switches
off when the time is up, and a pulse asked for while one is pending or running extends it rather than
starting a second one (`PulsePlan`). The relay is forced off at start, at close() and at interpreter
exit, unless a hold keeps it released (below) or `fail_mode = "safe"` leaves it released at close.
A write that fails is retried once after reopening the device. The same worker polls the optional inputs
(PASS from the turnstile, door sensor, fire, exit button) and queues their changes as events.

Life safety, decided here and not in the gate (so it does not wait for the supervisor, and it holds while
the gate's other threads are busy): while the fire input is active (debounced by `FireWatch`; a cut
supervised line counts as active) the relay is held on and no pulse end, set(False) or close() switches
it off; at start the fire input is read before the relay is forced off, so a gate restarted during a
fire keeps the turnstile released. `hold(reason, on)` holds it for other reasons (a guard's hold-open).
The exit button's press pulses the relay for `exit_pulse_ms`. `siren(seconds)` drives the siren output
(where the board has one) for at most `siren_max_s`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections import deque

from drivers.relay.config import RelayConfigBase
from drivers.relay.fire import FireWatch
from drivers.relay.protocol import InputEvent, RelayError, RelayStats, input_changes
from drivers.relay.pulse import PulsePlan

log = logging.getLogger(__name__)


class BaseRelay:
    """Pulse timing, forced-off, reconnect-once-then-fail and input polling; subclasses do the I/O."""

    name = "relay"
    input_names: tuple[str, ...] = ()
    switch_in_worker = False  # True: pulse() leaves the switch-on to the worker (a slow round trip)
    has_siren = False  # the driver has a siren output (`_write_siren`)

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
        self._holds: set[str] = set()  # why the relay is held on ("fire", "hold_open"): nothing switches it off
        self._hold_applied = False  # the relay was switched on for the holds
        self._retry_at = 0.0  # a failed hold or siren write is tried again from then
        self._fire = FireWatch(cfg.fire_release_s)
        self._siren_until: float | None = None
        self._siren_state = False
        self.polls = 0  # input polls done (tests count the polls between an input and the coil)

    # -- subclass hooks -----------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _close_port(self) -> None:
        raise NotImplementedError

    def _release(self, keep_on: bool) -> None:
        """Release the device at close; `keep_on`: the relay is left on (fail_mode safe, or a fire), and a
        driver whose outputs fall back when released may keep them driven (GPIO)."""
        self._close_port()

    def _write(self, on: bool) -> None:
        raise NotImplementedError

    def _read_inputs(self) -> dict[str, bool]:
        return {}

    def _write_siren(self, on: bool) -> None:
        raise NotImplementedError

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
        if self._fire_at_start():  # a restart during a fire: released again, never forced off first
            log.warning("%s: the fire input is active at start: the turnstile stays released", self.name)
            self._switch(True)
            self._hold_applied = True
        else:
            self._switch(False)
        if self.has_siren:
            with contextlib.suppress(OSError):  # logged and counted; the worker tries again
                self._siren_write(False)
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

    def hold(self, reason: str, on: bool) -> None:
        """Hold the relay on for `reason` (or end that hold); the worker switches it. While any hold is
        on, the end of a pulse, set(False) and close() leave the relay on; the fire hold is the worker's."""
        with self._lock:
            if on:
                self._holds.add(reason)
            else:
                self._holds.discard(reason)
            self._wake.notify_all()

    @property
    def holds(self) -> frozenset[str]:
        return frozenset(self._holds)

    def siren(self, seconds: float) -> bool:
        """Sound the siren for `seconds` (at most siren_max_s; a longer ask is cut, a running siren is
        extended); 0 silences it. False if this board has no siren output."""
        if not self.has_siren:
            return False
        with self._lock:
            if seconds <= 0:
                self._siren_until = None
            else:
                until = time.monotonic() + min(seconds, self.base_cfg.siren_max_s)
                self._siren_until = max(until, self._siren_until or until)
            self._wake.notify_all()
        return True

    @property
    def siren_on(self) -> bool:
        return self._siren_state

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
        self._holds &= {"fire"}  # a guard's hold ends with the gate; a fire's does not
        safe = self.base_cfg.fail_mode == "safe"
        if self._holds:
            log.warning("%s: the fire input is active: the relay is left released", self.name)
        try:
            self._switch(safe)  # (not written while the fire holds it)
        except RelayError as exc:
            log.error("%s: could not switch the relay %s at close: %s", self.name, "on" if safe else "off", exc)
        if self.has_siren:
            with contextlib.suppress(OSError):  # logged and counted
                self._siren_write(False)
        with self._io:
            self._release(keep_on=self._state and (safe or bool(self._holds)))
        self._started = False
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception:  # at exit nothing may propagate; the message is the last thing we can do
            log.exception("%s: close at exit failed", self.name)

    # -- internals ----------------------------------------------------------------------------
    def _switch(self, on: bool) -> None:
        """Write with one reopen-and-retry; raises RelayError with what went wrong. Switching off while a
        hold is on writes nothing (the relay stays on)."""
        if not on and self._holds:
            return
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
                hold_job = self._hold_job(now)
                if hold_job is not None:
                    job = hold_job
                elif self._plan.due(now) and now >= off_retry_at:
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
                    if self._siren_until is not None:
                        waits.append(max(self._siren_until, self._retry_at) - now)
                    if (self._holds or self._hold_applied) and self._retry_at > now:
                        waits.append(self._retry_at - now)
                    timeout = max(0.0, min(waits))
                    if timeout > 0:
                        self._wake.wait(timeout)
            # the I/O runs outside _lock: pulse() never waits for a round trip to the board
            if job in ("hold", "release", "siren_on", "siren_off"):
                self._worker_hold_or_siren(job)
            elif job == "on":
                self._worker_switch_on(gen)
            elif job == "off" and not self._worker_switch_off(gen):
                off_retry_at = time.monotonic() + 0.2  # keep trying: a relay stuck on is an open gate
            if poll is not None and time.monotonic() >= next_poll:
                ok = self._poll_inputs()
                next_poll = time.monotonic() + (poll if ok else max(poll, 0.25))

    def _hold_job(self, now: float) -> str | None:
        """What the holds and the siren owe (under _lock): a hold's switch-on comes before anything else."""
        if now < self._retry_at:
            return None
        if self._holds and not (self._hold_applied and self._state):
            return "hold"
        if self._hold_applied and not self._holds and not self.pulsing:
            return "release"
        if self.has_siren:
            want = self._siren_until is not None and now < self._siren_until
            if not want:
                self._siren_until = None
            if want != self._siren_state:
                return "siren_on" if want else "siren_off"
        return None

    def _worker_hold_or_siren(self, job: str) -> None:
        try:
            if job == "hold":
                self._switch(True)
                self._hold_applied = True
            elif job == "release":
                self._switch(False)
                self._hold_applied = False
                log.info("%s: no hold any more: the relay is off", self.name)
            else:
                self._siren_write(job == "siren_on")
        except (RelayError, OSError):  # counted and logged by _switch / _siren_write; tried again soon
            self._retry_at = time.monotonic() + 0.2

    def _siren_write(self, on: bool) -> None:
        with self._io:
            try:
                self._write_siren(on)
            except Exception as exc:
                self._write_failures += 1
                self._last_error = f"could not switch the siren {'on' if on else 'off'}: {exc}"
                log.error("%s: %s", self.name, self._last_error)
                raise OSError(self._last_error) from exc
            self._writes += 1
        self._siren_state = on

    def _fire_at_start(self) -> bool:
        """The fire input read once before the relay is first switched (False if there is none or it
        cannot be read: the worker's polls decide from then on)."""
        if "fire" not in self.input_names:
            return False
        try:
            with self._io:
                values = self._read_inputs()
        except Exception as exc:
            log.warning("%s: the fire input could not be read at start: %s", self.name, exc)
            return False
        now = time.monotonic()
        active = self._fire.update([(values.get("fire", False) or values.get("fire_trouble", False), now)], now)
        if active:
            self._holds.add("fire")
            self._inputs["fire"] = True
        return active

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
        now = time.monotonic()
        self.polls += 1
        if "fire" in values:
            edges, values = self._fire_hold(edges, values, now)
        changes = input_changes(self._inputs, edges, values, now)
        self._events.extend(changes)
        if any(e.name == "exit" and e.active for e in changes):
            try:
                self.pulse(self.base_cfg.exit_pulse_ms)
            except RelayError as exc:
                log.error("%s: the exit button could not release the turnstile: %s", self.name, exc)
        return True

    def _fire_hold(self, edges: list[InputEvent], values: dict[str, bool],
                   now: float) -> tuple[list[InputEvent], dict[str, bool]]:
        """Fold the fire (and trouble) samples into the debounced fire state and hold or let go: the
        `fire` input the gate sees is that state, not the raw contact."""
        trouble = values.get("fire_trouble", False)
        samples = [(e.active, e.t) for e in edges if e.name in ("fire", "fire_trouble")]
        samples.append((values["fire"] or trouble, now))
        active = self._fire.update(samples, now)
        with self._lock:
            if active and "fire" not in self._holds:
                log.warning("%s: fire input active: holding the turnstile released", self.name)
            elif not active and "fire" in self._holds:
                log.warning("%s: fire input inactive for %g s: the fire hold ends", self.name,
                            self.base_cfg.fire_release_s)
            self.hold("fire", active)
        return [e for e in edges if e.name != "fire"], {**values, "fire": active}
