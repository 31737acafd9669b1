"""`FireWatch`: whether the turnstile must be held released for a fire, from the fire input's samples (pure:
no threads, no I/O, the times passed in as time.monotonic() values).

Any active sample (a polled state or an edge the device timestamped) holds it at once; it lets go only
once every sample has been inactive for `release_s`, so an input that flaps (a loose wire, 10 changes a
second) keeps the turnstile released all the time it is active, and a cut supervised line (reported as
active by the driver) too.
"""

from __future__ import annotations

from collections.abc import Iterable


class FireWatch:
    def __init__(self, release_s: float) -> None:
        self.release_s = release_s
        self.active = False
        self.last_active_t: float | None = None

    def update(self, samples: Iterable[tuple[bool, float]], now: float) -> bool:
        """Take samples (active, t), oldest first, the last one read at `now`; returns whether fire holds."""
        latest = False
        for active, t in samples:
            latest = active
            if active:
                self.active = True
                self.last_active_t = max(self.last_active_t or t, t)
        if self.active and not latest and self.last_active_t is not None \
                and now - self.last_active_t >= self.release_s:
            self.active = False
        return self.active
