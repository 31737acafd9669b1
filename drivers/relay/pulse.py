"""`PulsePlan`: when the relay must be on, as a pure state machine (no threads, no I/O, times passed in).

The relay worker (drivers.relay.worker) asks it what is owed (a switch-on, a switch-off) and tells it
what happened; it is tested on its own with made-up times.
"""

from __future__ import annotations


class PulsePlan:
    """When the relay must be on: pure bookkeeping, the times passed in (time.monotonic() values).

    idle --ask()--> pending (one switch-on is owed) --switched_on(t)--> on until `end` --take_off()--> idle.
    An ask while pending or on never owes a second switch-on; it only makes the pulse last longer. A
    pulse lasts its full length from the moment the relay was confirmed on, not from the ask. After a
    failed switch (failed_on, failed_off) switching off is owed at once and comes first: an ask then
    waits for it (and is dropped if switching off fails, so a turnstile never opens long after its grant).
    """

    def __init__(self) -> None:
        self.pending_ms: int | None = None  # asked for, not switched on yet (the longest ask)
        self.end: float | None = None  # switch off at this time
        self.forcing_off = False  # `end` is not a pulse's end but an owed switch-off after a failure

    @property
    def active(self) -> bool:
        return self.pending_ms is not None or self.end is not None

    def ask(self, now: float, ms: int) -> bool:
        """A pulse of `ms` is wanted from `now`; True when the relay must be switched on for it."""
        if self.end is not None and not self.forcing_off:
            self.end = max(self.end, now + ms / 1000)
            return False
        if self.pending_ms is not None:
            self.pending_ms = max(self.pending_ms, ms)
            return False
        self.pending_ms = ms
        return True

    def switched_on(self, now: float) -> None:
        """The relay is on since `now` (nothing happens if the pulse was cancelled meanwhile)."""
        if self.pending_ms is not None:
            self.end = max(self.end or 0.0, now + self.pending_ms / 1000)
            self.pending_ms = None
            self.forcing_off = False

    def failed_on(self, now: float) -> None:
        """Switching on failed: the relay's state is unknown, so switching off is due at once."""
        self.pending_ms = None
        self.end = now
        self.forcing_off = True

    def failed_off(self, now: float) -> None:
        """Switching off failed: it is still owed (due at once), and asks waiting for it are dropped."""
        self.failed_on(now)

    def due(self, now: float) -> bool:
        return self.end is not None and now >= self.end

    @property
    def switch_on_owed(self) -> bool:
        """A switch-on is owed and no switch-off comes first."""
        return self.pending_ms is not None and self.end is None

    def take_off(self) -> None:
        """The switch-off is being done: no end any more (a waiting or new ask owes a switch-on)."""
        self.end = None
        self.forcing_off = False

    def clear(self) -> None:
        self.pending_ms = self.end = None
        self.forcing_off = False
