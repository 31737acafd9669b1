"""The store's SQLite database: one write connection (WAL, synchronous=FULL), a reader connection per
thread, write transactions (nested ones become savepoints), the outbox hand-over to watchers, meta and
integrity. `edge.store.Store` adds the tables' operations (persons, events, side records) on top."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from edge.filemodes import prepare_sqlite, tighten_sqlite
from edge.records import JsonDict, dumps, ts_text, utc
from edge.store.errors import StoreError, StoreFullError, StoreWriteError
from edge.store.migrations import migrate
from edge.store.rows import OutboxRow

log = logging.getLogger("edge.store")
T = TypeVar("T")
SQLITE_IOERR, SQLITE_FULL = 10, 13


def now_utc(now: datetime | None) -> datetime:
    return utc(now, "now") if now is not None else datetime.now(UTC)


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    # an offset past SQLite's largest integer (2**63 - 1) raises OverflowError; it is past every row anyway
    return max(1, min(int(limit), 10_000)), max(0, min(int(offset), 2**63 - 1))


class Database:
    """Open with `Store.open(path)`. Write methods are serialised on one connection (use `StoreWriter`
    to keep them off the hot path); reads use a connection per thread and never wait for writes."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, snapshots: bool,
                 busy_timeout_ms: int) -> None:
        self.path = path
        self.snapshots = snapshots
        self._busy_timeout_ms = busy_timeout_ms
        self._wconn: sqlite3.Connection | None = conn
        self._wlock = threading.RLock()
        self._depth = 0
        self._tx_owner: int | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._outbox_watchers: list[Callable[[list[OutboxRow]], None]] = []
        self._outbox_written: list[OutboxRow] = []  # rows the open write transaction queued

    # ------------------------------------------------------------------------------- open / close

    @classmethod
    def open(cls, path: Path, *, snapshots: bool = False, max_bytes: int | None = None,
             busy_timeout_ms: int = 5000, tighten_modes: bool = True) -> Self:
        """Open (creating directory and file) and migrate. `max_bytes` caps the database size. The
        directory is made 0700 and the files 0600 whatever the umask (edge.filemodes); an existing
        directory or file open to other users is tightened (a warning), unless `tighten_modes` is False
        (the self-test reports them instead)."""
        path = Path(path)
        try:
            if tighten_modes or not path.exists():
                prepare_sqlite(path)
        except OSError as exc:
            raise StoreError(f"cannot create the store {path} (mode 0600, its directory 0700): {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = cls._connect(path, busy_timeout_ms)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL journal mode (got {mode})")
            if tighten_modes:
                tighten_sqlite(path)
            conn.execute("PRAGMA synchronous=FULL")
            if max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // int(page_size))}")
            version = migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        log.info("store %s open (schema version %s, snapshots %s)", path, version,
                 "on" if snapshots else "off")
        return cls(path, conn, snapshots=snapshots, busy_timeout_ms=busy_timeout_ms)

    @staticmethod
    def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=busy_timeout_ms / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")  # deleted templates and crops are overwritten, not left in free pages
        return conn

    def close(self) -> None:
        with self._wlock:
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- transactions / reads

    def _error(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == SQLITE_FULL:
            return StoreFullError(f"store {self.path} is full (disk or size limit): {exc}; this write was "
                                  "rolled back, earlier data is intact")
        if code == SQLITE_IOERR:
            return StoreWriteError(f"store {self.path}: the disk refused a write ({exc}: disk full, file "
                                   "size limit or failing storage); this write was rolled back")
        if isinstance(exc, sqlite3.IntegrityError):
            return StoreError(f"store {self.path} refused the write: {exc}")
        return StoreError(f"store {self.path}: {exc}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls (same thread) become savepoints inside the outer one."""
        queued: list[OutboxRow] = []  # outbox rows this (outermost) transaction committed
        with self._wlock:
            conn = self._wconn
            if conn is None:
                raise StoreError(f"store {self.path} is closed")
            depth = self._depth
            mark = len(self._outbox_written)
            try:
                conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            self._depth, self._tx_owner = depth + 1, threading.get_ident()
            try:
                yield conn
                conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
                if depth == 0:
                    queued, self._outbox_written = self._outbox_written, []
            except BaseException as exc:
                del self._outbox_written[mark:]  # those rows are rolled back
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO sp{depth}")
                        if depth:
                            conn.execute(f"RELEASE sp{depth}")
                    except sqlite3.Error:
                        log.exception("rollback failed in %s", self.path)
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise
            finally:
                self._depth = depth
                if depth == 0:
                    self._tx_owner = None
        if queued:
            self._outbox_committed(queued)

    def watch_outbox(self, fn: Callable[[list[OutboxRow]], None]) -> Callable[[], None]:
        """Call `fn(rows)` with the outbox rows of each commit that queued some, in `seq` order, on the
        writing thread (so it must not block); returns the function that stops it. The sync's drainer
        uses it to send them at once without reading them back (rows of a rolled-back savepoint are not
        among them). `seq` increases from commit to commit; another process writing the same file can
        leave gaps a watcher must fill from the table."""
        with self._readers_lock:
            self._outbox_watchers.append(fn)

        def unwatch() -> None:
            with self._readers_lock:
                if fn in self._outbox_watchers:
                    self._outbox_watchers.remove(fn)
        return unwatch

    def _outbox_committed(self, rows: list[OutboxRow]) -> None:
        with self._readers_lock:
            watchers = list(self._outbox_watchers)
        for fn in watchers:
            try:
                fn(rows)
            except Exception:  # a watcher's failure is not the write's
                log.exception("outbox watcher %r failed", fn)

    def _read(self) -> sqlite3.Connection:
        if self._tx_owner == threading.get_ident() and self._wconn is not None:
            return self._wconn  # inside this thread's write transaction: see its own writes
        if self._wconn is None:
            raise StoreError(f"store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(self.path, self._busy_timeout_ms)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._read().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def apply_in_transaction(self, fn: Callable[[Self], T]) -> T:
        """Run `fn(store)` so that all its writes commit together or not at all."""
        with self._tx():
            return fn(self)

    def forget_deleted_pages(self) -> None:
        """Copy the WAL into the database and empty it, so no earlier page image of deleted biometric data
        stays in the -wal file (secure_delete already zeroes the freed pages). A no-op inside a transaction
        (its owner calls it after the commit); best effort while a reader holds an old snapshot."""
        with self._wlock:
            conn = self._wconn
            if conn is None or self._depth:
                return
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("checkpoint after a deletion failed in %s: %s", self.path, exc)

    def _outbox(self, conn: sqlite3.Connection, item_id: str, kind: str, payload: JsonDict) -> None:
        text, now = dumps(payload), datetime.now(UTC)
        cur = conn.execute("INSERT INTO outbox (event_id, topic_kind, payload, created_at) VALUES (?, ?, ?, ?)",
                           (item_id, kind, text, ts_text(now)))
        if cur.lastrowid is not None:
            self._outbox_written.append(OutboxRow(cur.lastrowid, item_id, kind, text, now))

    def _parse(self, rows: Iterable[sqlite3.Row], parse: Callable[[sqlite3.Row], T], what: str) -> list[T]:
        out = []
        for row in rows:
            try:
                out.append(parse(row))
            except (ValueError, TypeError) as exc:  # only a hand-edited database gets here
                log.error("malformed %s row %s in %s skipped: %s", what, row[0], self.path, exc)
        return out

    # ------------------------------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                         "value = excluded.value", (key, str(value)))

    def integrity_check(self) -> str:
        """'ok', or what SQLite found wrong (page structure, then foreign keys)."""
        problems = [str(r[0]) for r in self._query("PRAGMA integrity_check")]
        if problems != ["ok"]:
            return "; ".join(problems)
        fks = self._query("PRAGMA foreign_key_check")
        if fks:
            return "; ".join(f"foreign key violation in {r[0]} row {r[1]} -> {r[2]}" for r in fks)
        return "ok"
