"""Guard authentication: argon2 password hashes, server-side sessions with expiry and a CSRF token
each, and a sliding-window limit on login attempts per client address and per guard name."""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
SESSION_COOKIE = "gate_session"
LOGIN_CSRF_COOKIE = "gate_login_csrf"
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name takes as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a guard's password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the guard exists; False for a wrong password or a broken hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError) as exc:
        log.error("a guard's password hash could not be checked: %s", exc)
        return False


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class Session:
    token: str
    guard: str
    role: str
    csrf: str
    expires: float  # time.monotonic()
    created: float = field(default_factory=time.monotonic)


class Sessions:
    """Sessions live in memory only: a restart of the gate logs every guard out (by design)."""

    def __init__(self, hours: float) -> None:
        self.lifetime_s = hours * 3600.0
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, guard: str, role: str) -> Session:
        s = Session(secrets.token_urlsafe(32), guard, role, secrets.token_urlsafe(32),
                    time.monotonic() + self.lifetime_s)
        with self._lock:
            self._purge()
            self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is not None and s.expires <= time.monotonic():
                del self._by_token[token]
                return None
            return s

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)

    def drop_guard(self, guard: str) -> None:
        with self._lock:
            for token in [t for t, s in self._by_token.items() if s.guard == guard]:
                del self._by_token[token]

    def _purge(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            del self._by_token[token]

    def __len__(self) -> int:
        return len(self._by_token)


class LoginLimiter:
    """At most `per_minute` attempts in any 60 s per key ("ip:..." and "user:..."); `check` tells how many
    seconds to wait (0: go ahead, and the attempt is counted)."""

    WINDOW_S = 60.0
    MAX_KEYS = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > self.MAX_KEYS:
                self._hits = {k: q for k, q in self._hits.items() if q and now - q[-1] < self.WINDOW_S}
            wait = 0.0
            for key in keys:
                q = self._hits.setdefault(key, deque())
                while q and now - q[0] >= self.WINDOW_S:
                    q.popleft()
                if len(q) >= self.per_minute:
                    wait = max(wait, self.WINDOW_S - (now - q[0]))
            if wait > 0:
                return max(1, int(wait + 0.999))
            for key in keys:
                self._hits[key].append(now)
            return 0

    def forget(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
