"""What stands between a login form and a password check: a limiter that backs off per (address, name)
without letting anyone lock a guard out from elsewhere, the login form's one-use tokens, and the check
that a login was posted by this page and not by another origin (another port of the same host included).

Used by the guards' page of a gate and by the hub's admin page.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

WINDOW_S = 60.0


@dataclass
class _Pair:
    failures: int = 0  # wrong passwords in a row for this (address, name)
    locked_until: float = 0.0  # time.monotonic()
    last: float = 0.0


@dataclass(frozen=True)
class Verdict:
    wait_s: int  # 0: go ahead and check the password
    why: str = ""  # "pair", "address", "global"


class LoginLimiter:
    """Only failed logins count. A (client address, guard name) pair may fail `free_failures` times; each
    further failure doubles its wait (1 s, 2 s, 4 s ... up to `max_backoff_s`). One address may fail at
    most `address_per_minute` times in any 60 s, whatever names it tries. Once more than
    `global_per_minute` failures came from all addresses together in 60 s, an address that failed itself
    in that minute waits for the minute to pass; an address with no failure of its own is never held
    back, so the real guard at another terminal still gets in. A success clears its pair.

    `failed` tells when a name has just been locked out (the first lockout of a name in a minute, or the
    failures for one name from every address reaching `name_alarm_failures`): the caller raises one alarm.
    """

    MAX_PAIRS = 10_000

    def __init__(self, address_per_minute: int = 20, *, free_failures: int = 5, max_backoff_s: float = 900.0,
                 global_per_minute: int = 100, name_alarm_failures: int = 20) -> None:
        self.address_per_minute = address_per_minute
        self.free_failures = free_failures
        self.max_backoff_s = max_backoff_s
        self.global_per_minute = global_per_minute
        self.name_alarm_failures = name_alarm_failures
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._by_address: dict[str, deque[float]] = {}
        self._by_name: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._alarmed: dict[str, float] = {}  # name -> when its lockout alarm was raised
        self._lock = threading.Lock()

    def check(self, address: str, name: str) -> Verdict:
        """May this address try this name's password now? Counts nothing."""
        now = time.monotonic()
        key = (address, name.lower())
        with self._lock:
            self._expire(now)
            pair = self._pairs.get(key)
            if pair is not None and pair.locked_until > now:
                return Verdict(_seconds(pair.locked_until - now), "pair")
            mine = self._by_address.get(address)
            if mine and len(mine) >= self.address_per_minute:
                return Verdict(_seconds(WINDOW_S - (now - mine[0])), "address")
            if mine and len(self._all) >= self.global_per_minute:
                return Verdict(_seconds(WINDOW_S - (now - mine[-1])), "global")
            return Verdict(0)

    def failed(self, address: str, name: str) -> bool:
        """Count a wrong password; True when this failure locked the name out and an alarm is due."""
        now = time.monotonic()
        lowered = name.lower()
        with self._lock:
            if len(self._pairs) > self.MAX_PAIRS:
                self._pairs = {k: p for k, p in self._pairs.items() if p.locked_until > now or now - p.last < WINDOW_S}
            pair = self._pairs.setdefault((address, lowered), _Pair())
            pair.failures += 1
            pair.last = now
            locked = pair.failures > self.free_failures
            if locked:
                pair.locked_until = now + min(self.max_backoff_s, 2.0 ** (pair.failures - self.free_failures - 1))
            for bucket in (self._by_address.setdefault(address, deque()), self._by_name.setdefault(lowered, deque()),
                           self._all):
                bucket.append(now)
            spread = len(self._by_name[lowered]) >= self.name_alarm_failures
            if (locked or spread) and now - self._alarmed.get(lowered, -WINDOW_S) >= WINDOW_S:
                self._alarmed[lowered] = now
                return True
            return False

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._pairs.pop((address, name.lower()), None)

    def _expire(self, now: float) -> None:
        for buckets in (self._by_address, self._by_name):
            for k in [k for k, q in buckets.items() if _trim(q, now) == 0]:
                del buckets[k]
        _trim(self._all, now)


def _trim(q: deque[float], now: float) -> int:
    while q and now - q[0] >= WINDOW_S:
        q.popleft()
    return len(q)


def _seconds(wait: float) -> int:
    return max(1, int(wait + 0.999))


class LoginTokens:
    """The login form's CSRF tokens: made by the server, each good for one post within `lifetime_s`.
    A token the server did not issue (made up, or from a cookie another page tossed in) is refused."""

    MAX = 5_000

    def __init__(self, lifetime_s: float = 3600.0) -> None:
        self.lifetime_s = lifetime_s
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._issued) >= self.MAX:
                self._issued = {t: exp for t, exp in self._issued.items() if exp > now}
                while len(self._issued) >= self.MAX:  # still full: the oldest go
                    del self._issued[next(iter(self._issued))]
            self._issued[token] = now + self.lifetime_s
        return token

    def redeem(self, token: str | None) -> bool:
        """True (once) for a token this server issued that has not expired."""
        if not token:
            return False
        with self._lock:
            expires = self._issued.pop(token, None)
        return expires is not None and expires > time.monotonic()


def posted_by_this_page(headers: Mapping[str, str], host: str | None) -> bool:
    """A browser's form post came from this page's own origin: `Sec-Fetch-Site` (when sent) is
    `same-origin` (another port of the same host is `same-site`: refused) and `Origin` (when sent)
    names this host and port. A client that sends neither (curl, a script) is no browser a forged page
    could drive, and passes."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
