"""Guard authentication: argon2 password hashes and server-side sessions with expiry and a CSRF token
each, re-checked against the guards table (`Sessions.check_all`) so that what a session holds open ends
when the guard logs out, is disabled, changes role or the session expires. The login limiter and the
login form's tokens are in `login_guard`."""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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


class GuardLike(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def disabled(self) -> bool: ...


@dataclass
class Session:
    token: str
    guard: str
    role: str
    csrf: str
    expires: float  # time.monotonic()
    created: float = field(default_factory=time.monotonic)
    ended: str | None = None  # why it ended ("logout", "disabled", "expired"): open streams close on it

    def holds(self, role: str) -> bool:
        """Still good for a stream opened with `role`: not ended, and the role has not changed since."""
        return self.ended is None and self.role == role


class Sessions:
    """Sessions live in memory only: a restart of the gate logs every guard out (by design)."""

    STALE_S = 2.0

    def __init__(self, hours: float) -> None:
        self.lifetime_s = hours * 3600.0
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.checks = 0  # how many times check_all has run (tests tell "within one check" by it)
        self.watched = False  # a checker runs (the served app): streams then need fresh checks
        self._last_check = time.monotonic()

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
                self._end(token, "expired")
                return None
            return s

    def drop(self, token: str | None, why: str = "logout") -> None:
        with self._lock:
            self._end(token or "", why)

    def drop_guard(self, guard: str, why: str = "disabled") -> None:
        with self._lock:
            for token in [t for t, s in self._by_token.items() if s.guard == guard]:
                self._end(token, why)

    def check_all(self, lookup: Callable[[str], GuardLike | None]) -> None:
        """Re-read every logged-in guard (`lookup`: the guards table, None when the guard is gone): end
        the sessions of disabled or deleted guards and expired sessions, take a changed role. Streams
        watch `Session.holds`, so what they hold open closes at the next check (`checks` counts them)."""
        with self._lock:
            self._purge()
            names = {s.guard for s in self._by_token.values()}
        current = {name: lookup(name) for name in names}  # outside the lock: this reads the store
        with self._lock:
            for token, s in list(self._by_token.items()):
                if s.guard not in current:
                    continue  # logged in while the store was read: the next check sees it
                guard = current[s.guard]
                if guard is None or guard.disabled:
                    self._end(token, "disabled")
                else:
                    s.role = guard.role
            self.checks += 1
            self._last_check = time.monotonic()

    def fresh(self) -> bool:
        """The guards were re-read lately (or nothing checks them): what a stream holds may go on. When
        the checks stop (the store cannot be read), streams end within STALE_S and the browser's
        reconnect is checked afresh."""
        return not self.watched or time.monotonic() - self._last_check < self.STALE_S

    def _end(self, token: str, why: str) -> None:
        s = self._by_token.pop(token, None)
        if s is not None:
            s.ended = why

    def _purge(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._by_token.items() if s.expires <= now]:
            self._end(token, "expired")

    def __len__(self) -> int:
        return len(self._by_token)
