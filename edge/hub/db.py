"""The hub's database: an SQLite file (default, nothing to install) or PostgreSQL (`postgresql://...`,
psycopg 3), with one schema written in the SQL both understand and numbered migrations. Statements
use `?` placeholders; for PostgreSQL they are rewritten to `%s`."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from edge.filemodes import prepare_sqlite, tighten_sqlite

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE persons (id TEXT PRIMARY KEY, entry TEXT NOT NULL, status TEXT NOT NULL, "
        "version BIGINT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE gates (gate_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, added_at TEXT NOT NULL)",
        "CREATE TABLE changes (version BIGINT PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL, "
        "published_at TEXT)",
        "CREATE TABLE gate_acks (gate_id TEXT PRIMARY KEY, version BIGINT NOT NULL, kind TEXT NOT NULL, "
        "status TEXT NOT NULL, code TEXT NOT NULL, need_snapshot INTEGER NOT NULL, ts TEXT NOT NULL, "
        "push_digest TEXT)",
        "CREATE TABLE events (event_id TEXT PRIMARY KEY, gate_id TEXT NOT NULL, ts TEXT NOT NULL, "
        "person_id TEXT, decision TEXT NOT NULL, body TEXT NOT NULL, stored_by TEXT NOT NULL)",
        "CREATE INDEX events_person_ts ON events (person_id, ts)",
        "CREATE TABLE alarms (id TEXT PRIMARY KEY, gate_id TEXT, ts TEXT NOT NULL, kind TEXT NOT NULL, "
        "body TEXT NOT NULL)",
        "CREATE TABLE audit (seq BIGINT PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, "
        "details TEXT NOT NULL)",
    ),
    (  # 2: the gate board and the hub's own alarms (care watch, silent gates)
        "CREATE TABLE gate_seen (gate_id TEXT PRIMARY KEY, available TEXT, available_at TEXT, state TEXT, "
        "state_at TEXT, silent_alarm TEXT)",
        "CREATE TABLE hub_alarms (id TEXT PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL, gate_id TEXT, "
        "person_id TEXT, details TEXT NOT NULL, open_key TEXT, acknowledged_by TEXT, acknowledged_at TEXT)",
        "CREATE INDEX hub_alarms_open ON hub_alarms (open_key)",
    ),
    (  # 3: the admin page's accounts
        "CREATE TABLE accounts (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
        "disabled INTEGER NOT NULL, created_at TEXT NOT NULL)",
    ),
    (  # 4: groups and buildings of the register (the hub's own: gates do not need them)
        "CREATE TABLE person_groups (person_id TEXT NOT NULL, group_name TEXT NOT NULL, "
        "PRIMARY KEY (person_id, group_name))",
    ),
    (  # 5: a gate's grouped alarms: an update (same id, higher count) replaces the stored one
        "ALTER TABLE alarms ADD COLUMN seen_count BIGINT NOT NULL DEFAULT 1",
        "ALTER TABLE alarms ADD COLUMN last_seen TEXT",
    ),
)


class HubDbError(RuntimeError):
    """The database cannot be opened or refused a statement; the message says which and why."""


class _Conn(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class HubDatabase:
    """One connection, used under a lock (the hub's writes are few; reads are short)."""

    def __init__(self, conn: _Conn, kind: str, where: str, url: str = "") -> None:
        self._conn = conn
        self.kind = kind  # "sqlite" or "postgresql"
        self.where = where
        self._url = url
        self._broken = False  # PostgreSQL went away: reconnect before the next statement
        self._depth = 0  # inside tx(): reads are part of the transaction (never committed on their own)
        self._lock = threading.RLock()

    @classmethod
    def open(cls, url: str) -> HubDatabase:
        """`postgresql://...` or a file path (SQLite); migrated to the newest schema."""
        if url.startswith(("postgresql://", "postgres://")):
            db = cls(_pg_connect(url), "postgresql", url.split("@")[-1], url)
        else:
            path = Path(url)
            try:
                prepare_sqlite(path)  # its directory 0700, the file 0600 (and so its -wal, -shm)
                sq = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                sq.execute("PRAGMA journal_mode=WAL")
                sq.execute("PRAGMA synchronous=FULL")
                sq.execute("BEGIN")
                sq.execute("COMMIT")
                tighten_sqlite(path)
            except (OSError, sqlite3.Error) as exc:
                raise HubDbError(f"cannot open {path}: {exc}") from exc
            db = cls(_SqliteConn(sq), "sqlite", str(path))
        db.migrate()
        return db

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HubDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def _ready(self) -> None:
        if self._broken:
            self._conn = _pg_connect(self._url)  # HubDbError while it is still away
            self._broken = False

    def _failed(self, exc: Exception) -> None:
        if self.kind == "postgresql" and (getattr(self._conn, "closed", False) or
                                          type(exc).__name__ in ("OperationalError", "InterfaceError")):
            self._broken = True

    @contextlib.contextmanager
    def tx(self) -> Iterator[HubDatabase]:
        """One transaction: committed at the end of the block, rolled back on an exception."""
        with self._lock:
            if self._depth:  # nested: part of the outer transaction
                yield self
                return
            self._ready()
            self._depth += 1
            try:
                yield self
                self._depth -= 1
                self._conn.commit()
            except BaseException as exc:
                self._depth = 0
                with contextlib.suppress(Exception):
                    self._conn.rollback()
                if isinstance(exc, Exception) and not isinstance(exc, HubDbError):
                    self._failed(exc)
                    if self._broken:
                        raise HubDbError(f"the database went away: {' '.join(str(exc).split())}") from exc
                raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement (inside `tx`); the number of rows it changed."""
        with self._lock:
            self._ready()
            try:
                cur = self._conn.execute(self._sql(sql), tuple(params))
            except Exception as exc:
                self._failed(exc)
                raise HubDbError(f"the database refused {sql.split()[0]}: {' '.join(str(exc).split())}") from exc
            return int(getattr(cur, "rowcount", 0) or 0)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._ready()
            try:
                cur = self._conn.execute(self._sql(sql), tuple(params))
                out = [tuple(r) for r in cur.fetchall()]
                if self.kind == "postgresql" and not self._depth:
                    self._conn.commit()  # a read outside tx() ends its transaction (no idle transaction held)
                return out
            except Exception as exc:
                self._failed(exc)
                if self.kind == "postgresql" and not self._depth:
                    with contextlib.suppress(Exception):
                        self._conn.rollback()
                raise HubDbError(f"the database refused a read: {' '.join(str(exc).split())}") from exc

    def alive(self) -> bool:
        """Can a statement run now? (A reconnect is tried when PostgreSQL went away.)"""
        try:
            self.rows("SELECT 1")
            return True
        except HubDbError:
            return False

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        got = self.rows(sql, params)
        return got[0] if got else None

    def migrate(self) -> None:
        with self.tx():
            self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.one("SELECT version FROM schema_version")
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise HubDbError(f"the database schema is version {current}, newer than this hub "
                             f"({len(MIGRATIONS)}); upgrade edge-gate")
        for n in range(current, len(MIGRATIONS)):
            with self.tx():
                for statement in MIGRATIONS[n]:
                    self.execute(statement)
                self.execute("DELETE FROM schema_version")
                self.execute("INSERT INTO schema_version (version) VALUES (?)", (n + 1,))


def _pg_connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise HubDbError("database = postgresql://... needs psycopg (pip install 'psycopg[binary]')") from exc
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise HubDbError(f"cannot connect to the database: {' '.join(str(exc).split())}") from exc


class _SqliteConn:
    """sqlite3 in autocommit mode with explicit BEGIN/COMMIT, the same shape as a psycopg connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._in_tx = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        if not self._in_tx and not sql.lstrip().upper().startswith("SELECT"):
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        return self._conn.execute(sql, params)

    def commit(self) -> None:
        if self._in_tx:
            self._conn.execute("COMMIT")
            self._in_tx = False

    def rollback(self) -> None:
        if self._in_tx:
            self._conn.execute("ROLLBACK")
            self._in_tx = False

    def close(self) -> None:
        self._conn.close()
