"""Waiting on what a test needs (a state change, an event in the store, a log line) instead of sleeping:
poll a condition until it holds or a generous deadline passes. Deadlines are limits for a broken run,
never the expected duration: the machine the tests run on may be slow and busy."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 30.0


def poll_until(cond: Callable[[], object], timeout: float = DEFAULT_TIMEOUT_S, every: float = 0.02) -> bool:
    """True as soon as `cond()` is truthy, False if it still is not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def wait_until(cond: Callable[[], object], timeout: float = DEFAULT_TIMEOUT_S, what: str = "condition",
               every: float = 0.02) -> bool:
    """Until `cond()` is truthy (then True); AssertionError naming `what` after `timeout` seconds."""
    if not poll_until(cond, timeout, every):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return True
