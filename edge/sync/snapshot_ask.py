"""SnapshotAsk: when a gate needs a full snapshot (a version gap, behind the community's pointer, a
snapshot that timed out half-way) it says so in an ack, then asks again on its own until a snapshot
arrives: after `min_s`, doubling up to `max_s`, each delay jittered by +-20 % so that many gates
behind the same outage do not ask in step. `state.whitelist.need_snapshot` shows it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class SnapshotAsk:
    def __init__(self, min_s: float = 5.0, max_s: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.min_s, self.max_s = min_s, max_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._needed = False
        self._delay = min_s
        self._next = 0.0
        self.asked = 0  # re-asks sent since the need began

    @property
    def needed(self) -> bool:
        with self._lock:
            return self._needed

    def need(self) -> None:
        """An ack just asked for a snapshot: re-ask after the first delay (unless already waiting)."""
        with self._lock:
            if not self._needed:
                self._needed, self._delay, self.asked = True, self.min_s, 0
                self._next = self._clock() + self._jitter(self._delay)

    def satisfied(self) -> None:
        with self._lock:
            self._needed = False

    def postpone(self) -> None:
        """A snapshot is on its way (chunks arriving): no re-ask for one more delay."""
        with self._lock:
            if self._needed:
                self._next = self._clock() + self._jitter(self._delay)

    def due(self) -> bool:
        """True (and the next re-ask scheduled) when it is time to ask again."""
        with self._lock:
            if not self._needed or self._clock() < self._next:
                return False
            self._delay = min(self.max_s, self._delay * 2)
            self._next = self._clock() + self._jitter(self._delay)
            self.asked += 1
            return True

    def _jitter(self, delay: float) -> float:
        return delay * self._rng.uniform(0.8, 1.2)
