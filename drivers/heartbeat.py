"""`Heartbeat`: a worker loop's promise to check in again by a deadline, for the systemd watchdog.

A loop calls `beat(within)` each time round, and `beat(wait + within)` before a planned wait (a
reconnect backoff), so a long backoff is not a hang; `fresh` is False once a promise is broken, which
means the thread is stuck (a blocked read, a deadlock) rather than merely without a device.
"""

from __future__ import annotations

import threading
import time

DEFAULT_WITHIN_S = 10.0


class Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: float | None = None  # monotonic deadline; None before the first beat

    def beat(self, within: float | None = None) -> None:
        due = time.monotonic() + (DEFAULT_WITHIN_S if within is None else within)
        with self._lock:
            self._due = due

    @property
    def fresh(self) -> bool:
        with self._lock:
            due = self._due
        return due is not None and time.monotonic() <= due

    @property
    def overdue_s(self) -> float | None:
        """Seconds past the promised check-in (negative: time left); None before the first beat."""
        with self._lock:
            due = self._due
        return None if due is None else time.monotonic() - due
