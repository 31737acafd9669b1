"""What stands between a login form and a password check: a limiter that backs off per (address, name)
without letting anyone lock a guard out from elsewhere, the login form's one-use tokens, and the check
that a login was posted by this page and not by another origin (another port of the same host included).

Used by the guards' page of a gate and by the hub's admin page.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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

    A go-ahead from `check` reserves the attempt until the caller reports it (`failed`, `succeeded` or
    `abandoned`): one attempt in flight per pair, and attempts in flight count against the address's
    ceiling, so a burst of parallel posts gets no more guesses than posts one after another. IPv6
    addresses are counted by their /64 (one host's usual allocation).
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
        self._in_flight: dict[tuple[str, str], int] = {}
        self._in_flight_by_address: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, address: str, name: str) -> Verdict:
        """May this address try this name's password now? A go-ahead reserves the attempt (see above)."""
        now = time.monotonic()
        address = limit_key(address)
        key = (address, name.lower())
        with self._lock:
            self._expire(now)
            pair = self._pairs.get(key)
            if pair is not None and pair.locked_until > now:
                return Verdict(_seconds(pair.locked_until - now), "pair")
            if self._in_flight.get(key):
                return Verdict(1, "pair")  # its previous attempt is still being checked
            mine = self._by_address.get(address) or deque()
            if len(mine) + self._in_flight_by_address.get(address, 0) >= self.address_per_minute:
                return Verdict(_seconds(WINDOW_S - (now - mine[0])) if mine else 1, "address")
            if mine and len(self._all) >= self.global_per_minute:
                return Verdict(_seconds(WINDOW_S - (now - mine[-1])), "global")
            self._in_flight[key] = 1
            self._in_flight_by_address[address] = self._in_flight_by_address.get(address, 0) + 1
            return Verdict(0)

    def abandoned(self, address: str, name: str) -> None:
        """The attempt `check` allowed ended without a verdict on the password (an error)."""
        with self._lock:
            self._release(limit_key(address), name.lower())

    def _release(self, address: str, lowered: str) -> None:
        if self._in_flight.pop((address, lowered), None):
            left = self._in_flight_by_address.get(address, 1) - 1
            if left > 0:
                self._in_flight_by_address[address] = left
            else:
                self._in_flight_by_address.pop(address, None)

    def failed(self, address: str, name: str) -> bool:
        """Count a wrong password; True when this failure locked the name out and an alarm is due."""
        now = time.monotonic()
        address = limit_key(address)
        lowered = name.lower()
        with self._lock:
            self._release(address, lowered)
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
        address = limit_key(address)
        with self._lock:
            self._release(address, name.lower())
            self._pairs.pop((address, name.lower()), None)

    def _expire(self, now: float) -> None:
        for buckets in (self._by_address, self._by_name):
            for k in [k for k, q in buckets.items() if _trim(q, now) == 0]:
                del buckets[k]
        _trim(self._all, now)
        for k in [k for k, at in self._alarmed.items() if now - at >= WINDOW_S]:
            del self._alarmed[k]


def limit_key(address: str) -> str:
    """What the limits count by: the address, or an IPv6 address's /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped) if ip.version == 6 and ip.ipv4_mapped is not None else address


def _trim(q: deque[float], now: float) -> int:
    while q and now - q[0] >= WINDOW_S:
        q.popleft()
    return len(q)


def _seconds(wait: float) -> int:
    return max(1, int(wait + 0.999))


class LoginTokens:
    """The login form's CSRF tokens: `nonce.issued.mac`, an HMAC under a key made at start, so issuing
    costs no memory (a flood of form loads cannot push real guards' tokens out); each is good for one
    post within `lifetime_s` (used ones are remembered until they expire). A token the server did not
    issue (made up, altered, or expired) is refused."""

    MAX_USED = 50_000

    def __init__(self, lifetime_s: float = 3600.0) -> None:
        self.lifetime_s = lifetime_s
        self._key = secrets.token_bytes(32)
        self._used: dict[str, float] = {}  # token -> when it stops being valid anyway
        self._lock = threading.Lock()

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        body = f"{secrets.token_urlsafe(12)}.{int(time.time())}"
        return f"{body}.{self._mac(body)}"

    def redeem(self, token: str | None) -> bool:
        """True (once) for a token this server issued that has not expired."""
        if not token or len(token) > 100 or token.count(".") != 2:
            return False
        body, _, mac = token.rpartition(".")
        try:
            issued = int(body.rsplit(".", 1)[1])
        except ValueError:
            return False
        now = time.time()
        if not hmac.compare_digest(mac, self._mac(body)) or not 0 <= now - issued <= self.lifetime_s:
            return False
        with self._lock:
            if token in self._used:
                return False
            if len(self._used) >= self.MAX_USED:
                self._used = {t: until for t, until in self._used.items() if until > now}
                while len(self._used) >= self.MAX_USED:  # still full: the soonest to expire go
                    del self._used[min(self._used, key=self._used.__getitem__)]
            self._used[token] = issued + self.lifetime_s
        return True


def posted_by_this_page(headers: Mapping[str, str], host: str | None, public_origin: str | None = None) -> bool:
    """A browser's form post came from this page's own origin: `Sec-Fetch-Site` (when sent) is
    `same-origin` (another port of the same host is `same-site`: refused) and `Origin` (when sent)
    is `public_origin` (behind a proxy) or names this host and port. A client that sends neither (curl,
    a script) is no browser a forged page could drive, and passes."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if public_origin:
        return origin.rstrip("/").lower() == public_origin.rstrip("/").lower()
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
