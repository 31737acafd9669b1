"""Throttle: at most one alarm (or log line, or nack) per key per interval, with the count of what was
held back in between, so a flood of bad messages makes a few alarms, not one per message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class Throttle:
    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def hit(self, key: Hashable) -> int | None:
        """Count one occurrence of `key`. Returns None when it is held back, or (when it may go out now)
        how many were held back since the last one that went out."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)
