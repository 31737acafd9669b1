"""Event ids: ULIDs (48-bit millisecond time + 80 random bits, 26 Crockford base32 characters).

Ids made by one process sort in the order they were made, also within one millisecond (the random
part is incremented), so the server can order and deduplicate events by id alone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1
_TIME_MAX = (1 << 48) - 1


def encode(value: int) -> str:
    """26-character Crockford base32 of a 128-bit integer (big-endian, so string order = integer order)."""
    if not 0 <= value < 1 << 128:
        raise ValueError("a ULID is a 128-bit unsigned integer")
    chars = []
    for _ in range(26):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode(ulid: str) -> int:
    """The 128-bit integer of a ULID string (case-insensitive); ValueError if it is not one."""
    if len(ulid) != 26:
        raise ValueError(f"a ULID has 26 characters, not {len(ulid)}")
    value = 0
    for ch in ulid.upper():
        digit = _DECODE.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} is not a Crockford base32 digit")
        value = value << 5 | digit
    if value >= 1 << 128:
        raise ValueError("ULID out of range (first character must be 0-7)")
    return value


def timestamp(ulid: str) -> datetime:
    """The creation time encoded in a ULID (UTC, millisecond resolution)."""
    return datetime.fromtimestamp((decode(ulid) >> _RANDOM_BITS) / 1000, tz=UTC)


class UlidGenerator:
    """Monotonic ULIDs: within one millisecond (or if the clock steps back) the last id plus one."""

    def __init__(self, clock_ms: Callable[[], int] | None = None,
                 randbits: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._randbits = randbits or (lambda: int.from_bytes(os.urandom(10), "big"))
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def __call__(self) -> str:
        with self._lock:
            ms = self._clock_ms()
            if not 0 <= ms <= _TIME_MAX:
                raise ValueError(f"time {ms} ms does not fit a ULID")
            if ms <= self._last_ms:
                # same millisecond, or the clock went back: keep order by incrementing the last id
                ms, rand = self._last_ms, self._last_rand + 1
                if rand > _RANDOM_MAX:  # 2^80 ids in one millisecond: borrow the next millisecond
                    ms, rand = ms + 1, 0
            else:
                rand = self._randbits() & _RANDOM_MAX
            self._last_ms, self._last_rand = ms, rand
            return encode(ms << _RANDOM_BITS | rand)


_default = UlidGenerator()


def new_event_id() -> str:
    """A new ULID from the process-wide monotonic generator (thread-safe)."""
    return _default()
