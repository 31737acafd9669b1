"""`Backoff`: the one exponential delay for reconnect loops and supervisor restarts in the project.

The wait starts at `min_s`, doubles with each failure and is capped at `max_s`. Two ways to use it:

- a reconnect loop (serial ports, the MQTT link): `wait = b.failed()` after each failure, then sleep
  `wait`; `b.reset()` once the link worked, so the next failure waits `min_s` again. `jitter` (a
  fraction, 0..1) spreads the waits of many clients: the wait returned is `delay * uniform(1 - jitter, 1)`.
- a supervisor restarting a failed part: `b.schedule(now)` when the failure is noticed (once per
  failure: calling it again before the restart changes nothing), `b.due(now)` to know when to restart,
  `b.restarted(now)` after the restart. A part that had stayed up at least `max_s` since its last
  restart starts again from `min_s`: a new failure, not a crash loop.

`delay` is the un-jittered wait of the last failure (0.0: none since creation or `reset()`); both ways
double it with the same rule (`_step`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    min_s: float
    max_s: float
    jitter: float = 0.0  # fraction of the wait taken off at random (0: exact waits)
    delay: float = field(default=0.0, kw_only=True)  # the last failure's wait before jitter (0: none yet)
    wait: float = field(default=0.0, kw_only=True)  # the last wait handed out (jitter applied)
    next_at: float | None = field(default=None, kw_only=True)  # time of the scheduled restart
    up_since: float | None = field(default=None, kw_only=True)  # time of the last restart
    restarts: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff jitter must be a fraction 0..1, got {self.jitter}")
        self.max_s = max(self.min_s, self.max_s)

    @property
    def next_delay(self) -> float:
        """The wait (before jitter) the next failure gets."""
        return self.min_s if self.delay == 0 else min(self.delay * 2, self.max_s)

    def _step(self) -> float:
        """One more failure: double the delay (min_s the first time, capped at max_s); the jittered wait."""
        self.delay = self.next_delay
        self.wait = self.delay * random.uniform(1.0 - self.jitter, 1.0) if self.jitter else self.delay
        return self.wait

    # -- reconnect loop ---------------------------------------------------------------------------
    def failed(self) -> float:
        """An attempt failed: the time to wait now (the next failure waits twice as long, up to max_s)."""
        return self._step()

    def reset(self) -> None:
        """The link works again: the next failure waits min_s."""
        self.delay = self.wait = 0.0

    # -- supervisor restarts ----------------------------------------------------------------------
    def schedule(self, now: float) -> float:
        """A failure noticed at `now`: schedule the restart (once per failure); the wait until it."""
        if self.next_at is None:
            if self.up_since is not None and now - self.up_since >= self.max_s:
                self.reset()  # it had stayed up: a new failure, not a crash loop
            self.next_at = now + self._step()
        return self.wait

    def due(self, now: float) -> bool:
        """The scheduled restart's time has come."""
        return self.next_at is not None and now >= self.next_at

    def restarted(self, now: float) -> None:
        """The part was restarted at `now`."""
        self.next_at, self.up_since = None, now
        self.restarts += 1
