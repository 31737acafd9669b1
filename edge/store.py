"""The gate's local SQLite store: one write connection (WAL, synchronous=FULL), reader connections
per thread, the event and its outbox row in one transaction, retention.

Record types live in `edge.store_schema` (re-exported here), the tables in `edge.store_migrations`, and
the thread that serialises the gate's writes in `edge.store_writer`, passages, audit and guards in
`edge.store_records`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from edge.store_migrations import migrate
from edge.store_records import AuditEntry, RecordsMixin, now_utc, page_bounds
from edge.store_schema import (
    AlarmRecord,
    EventRecord,
    GuardRecord,
    JsonDict,
    OutboxRow,
    Passage,
    PersonRecord,
    SchemaTooNewError,
    StoreError,
    TimeWindow,
    WeeklySchedule,
    alarm_from_row,
    dumps,
    event_from_row,
    parse_ts,
    person_from_row,
    ts_text,
)

__all__ = [
    "AlarmRecord", "AuditEntry", "EventRecord", "GuardRecord", "OutboxRow", "Passage", "PersonRecord",
    "SchemaTooNewError", "Store", "StoreError", "StoreFullError", "StoreWriteError",
    "TimeWindow", "WeeklySchedule",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
EVENT_SCHEMA = "edge-gate/event/1"
ALARM_SCHEMA = "edge-gate/alarm/1"
SQLITE_IOERR, SQLITE_FULL = 10, 13
MAX_TEMPLATE_DIM = 4096
_CHUNK = 500  # ids per IN (...) list


class StoreWriteError(StoreError):
    """The disk refused a write (I/O error, file size limit): the write was rolled back."""


class StoreFullError(StoreWriteError):
    """The disk (or the configured size limit) is full: the write was rolled back, older data is intact."""


class Store(RecordsMixin):
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
             busy_timeout_ms: int = 5000) -> Store:
        """Open (creating directory and file) and migrate. `max_bytes` caps the database size."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {path.parent}: {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = cls._connect(path, busy_timeout_ms)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL journal mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            if max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // int(page_size))}")
            version = migrate(conn)
        except sqlite3.Error as exc:
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

    def __enter__(self) -> Store:
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

    def apply_in_transaction(self, fn: Callable[[Store], T]) -> T:
        """Run `fn(store)` so that all its writes commit together or not at all."""
        with self._tx():
            return fn(self)

    # -------------------------------------------------------------------------------------- persons

    def upsert_person(self, p: PersonRecord) -> None:
        d = p.to_dict()
        cols = list(d)
        row = [dumps(d[c]) if c in ("allowed_gates", "directions") or (c == "schedule" and d[c] is not None)
               else d[c] for c in cols]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        with self._tx() as conn:
            conn.execute(f"INSERT INTO persons ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                         f"ON CONFLICT(id) DO UPDATE SET {updates}", row)

    def _persons(self, rows: list[sqlite3.Row]) -> list[PersonRecord]:
        return self._parse(rows, person_from_row, "person")

    def get_person(self, person_id: str) -> PersonRecord | None:
        found = self._persons(self._query("SELECT * FROM persons WHERE id = ?", (person_id,)))
        return found[0] if found else None

    def list_persons(self, query: str | None = None, limit: int = 100, offset: int = 0) -> list[PersonRecord]:
        """Persons by name; `query` matches part of the id, name or unit (case-insensitive)."""
        limit, offset = page_bounds(limit, offset)
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query("SELECT * FROM persons WHERE id LIKE ?1 ESCAPE '\\' "
                               "OR name LIKE ?1 ESCAPE '\\' OR unit LIKE ?1 ESCAPE '\\' "
                               "ORDER BY name COLLATE NOCASE, id LIMIT ?2 OFFSET ?3", (like, limit, offset))
        else:
            rows = self._query("SELECT * FROM persons ORDER BY name COLLATE NOCASE, id LIMIT ? OFFSET ?",
                               (limit, offset))
        return self._persons(rows)

    def count_persons(self) -> int:
        return int(self._query("SELECT count(*) FROM persons")[0][0])

    def delete_person(self, person_id: str) -> bool:
        """Delete a person with their templates, snapshots and passages (biometric data goes with them)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM snapshots WHERE event_id IN "
                         "(SELECT event_id FROM events WHERE person_id = ?)", (person_id,))
            conn.execute("DELETE FROM passages WHERE person_id = ?", (person_id,))
            deleted = conn.execute("DELETE FROM persons WHERE id = ?", (person_id,)).rowcount > 0
        if deleted:
            self.forget_deleted_pages()
        return deleted

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

    # ------------------------------------------------------------------------------------ templates

    def add_templates(self, person_id: str, embeddings: np.ndarray, model_id: str) -> int:
        """Store face embeddings (n, d) of one model for a person; returns how many were added."""
        arr = np.asarray(embeddings)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] == 0 or not 0 < arr.shape[1] <= MAX_TEMPLATE_DIM:
            raise ValueError(f"embeddings must be a non-empty (n, d) array, d <= {MAX_TEMPLATE_DIM}; "
                             f"got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"embeddings must be real numbers, not {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype="<f4")
        if not np.isfinite(arr).all():
            raise ValueError("embeddings contain NaN or infinite values")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be non-empty text")
        dim = int(arr.shape[1])
        now = ts_text(datetime.now(UTC))
        with self._tx() as conn:
            row = conn.execute("SELECT dim FROM templates WHERE model_id = ? LIMIT 1", (model_id,)).fetchone()
            if row is not None and row[0] != dim:
                raise ValueError(f"model {model_id} templates have {row[0]} dimensions, not {dim}")
            if conn.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is None:
                raise StoreError(f"no person {person_id!r}: add the person before their templates")
            conn.executemany("INSERT INTO templates (person_id, model_id, dim, embedding, created_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [(person_id, model_id, dim, v.tobytes(), now) for v in arr])
        return int(arr.shape[0])

    def replace_templates(self, person_id: str, embeddings: np.ndarray, model_id: str) -> int:
        """Replace the person's templates of this model (atomically)."""
        def swap(store: Store) -> int:
            with store._tx() as conn:
                conn.execute("DELETE FROM templates WHERE person_id = ? AND model_id = ?",
                             (person_id, model_id))
            return store.add_templates(person_id, embeddings, model_id)
        return self.apply_in_transaction(swap)

    def load_templates(self, model_id: str) -> tuple[list[str], np.ndarray]:
        """(person id per row, (n, d) float32 matrix) of one model's templates, rows grouped by person."""
        try:
            return self._templates(self._read(), model_id)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _templates(self, conn: sqlite3.Connection, model_id: str) -> tuple[list[str], np.ndarray]:
        # streamed into one preallocated matrix: no list of 100,000 rows and blobs on the way
        n = int(conn.execute("SELECT count(*) FROM templates WHERE model_id = ?", (model_id,)).fetchone()[0])
        first = conn.execute("SELECT dim FROM templates WHERE model_id = ? ORDER BY person_id, id LIMIT 1",
                             (model_id,)).fetchone()
        if not n or first is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        dim = int(first[0])
        matrix = np.empty((n, dim), np.float32)
        ids: list[str] = []
        skipped = 0
        for person_id, row_dim, blob in conn.execute("SELECT person_id, dim, embedding FROM templates WHERE "
                                                     "model_id = ? ORDER BY person_id, id", (model_id,)):
            if row_dim != dim or len(blob) != 4 * dim or len(ids) == n:
                skipped += 1
                continue
            matrix[len(ids)] = np.frombuffer(blob, dtype="<f4")
            ids.append(person_id)
        if skipped:
            log.error("%s templates of model %s have a mismatched size and are skipped", skipped, model_id)
        return ids, matrix[:len(ids)]

    def load_whitelist(self, model_id: str) -> tuple[list[str], np.ndarray, list[PersonRecord], str | None]:
        """Templates (as load_templates), every person and the whitelist version, read in one snapshot, so a
        push applied meanwhile is seen whole or not at all."""
        conn = self._read()
        own = conn is self._wconn  # inside this thread's write transaction: already one snapshot
        try:
            if not own:
                conn.execute("BEGIN")
            try:
                ids, matrix = self._templates(conn, model_id)
                persons = self._parse(conn.execute("SELECT * FROM persons"), person_from_row, "person")
                version = conn.execute("SELECT value FROM meta WHERE key = 'whitelist_version'").fetchone()
            finally:
                if not own:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return ids, matrix, persons, str(version[0]) if version else None

    def count_templates(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._query("SELECT count(*) FROM templates")[0][0])
        return int(self._query("SELECT count(*) FROM templates WHERE model_id = ?", (model_id,))[0][0])

    # ------------------------------------------------------------------------ events, alarms, outbox

    def _insert_alarm(self, conn: sqlite3.Connection, a: AlarmRecord) -> None:
        conn.execute("INSERT INTO alarms (id, ts, kind, severity, message, details, gate_id, person_id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (a.id, ts_text(a.ts), a.kind, a.severity, a.message,
                                                         dumps(a.details), a.gate_id, a.person_id))
        self._outbox(conn, a.id, "alarm", {"schema": ALARM_SCHEMA, **a.to_dict()})

    def _outbox(self, conn: sqlite3.Connection, item_id: str, kind: str, payload: JsonDict) -> None:
        text, now = dumps(payload), datetime.now(UTC)
        cur = conn.execute("INSERT INTO outbox (event_id, topic_kind, payload, created_at) VALUES (?, ?, ?, ?)",
                           (item_id, kind, text, ts_text(now)))
        if cur.lastrowid is not None:
            self._outbox_written.append(OutboxRow(cur.lastrowid, item_id, kind, text, now))

    def record_event(self, ev: EventRecord, *, alarms: Sequence[AlarmRecord] = (),
                     passage: bool = True) -> str:
        """Write the event, its outbox row and its alarms (each with an outbox row) in one transaction.

        A grant to a known person also records the passage and counts one use (unless `passage=False`).
        """
        with self._tx() as conn:
            conn.execute("INSERT INTO events (event_id, ts, gate_id, direction, person_id, decision, "
                         "reasons, alarms, temperature, scores, synced) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (ev.event_id, ts_text(ev.ts), ev.gate_id, ev.direction, ev.person_id, ev.decision,
                          dumps(ev.reasons), dumps(ev.alarms),
                          None if ev.temperature is None else dumps(ev.temperature),
                          None if ev.scores is None else dumps(ev.scores), int(ev.synced)))
            self._outbox(conn, ev.event_id, "event", {"schema": EVENT_SCHEMA, **ev.to_dict()})
            for alarm in alarms:
                self._insert_alarm(conn, alarm)
            if passage and ev.decision == "grant" and ev.person_id is not None:
                conn.execute("INSERT OR IGNORE INTO passages (person_id, ts, gate_id, direction) "
                             "VALUES (?, ?, ?, ?)", (ev.person_id, ts_text(ev.ts), ev.gate_id, ev.direction))
                conn.execute("UPDATE persons SET uses = uses + 1 WHERE id = ?", (ev.person_id,))
        return ev.event_id

    def record_alarm(self, alarm: AlarmRecord) -> str:
        """Write the alarm and its outbox row in one transaction."""
        with self._tx() as conn:
            self._insert_alarm(conn, alarm)
        return alarm.id

    def acknowledge_alarm(self, alarm_id: str, by: str, at: datetime | None = None) -> bool:
        with self._tx() as conn:
            return conn.execute("UPDATE alarms SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? "
                                "AND acknowledged_at IS NULL", (by, ts_text(now_utc(at)), alarm_id)).rowcount > 0

    def alarms(self, since: datetime | None = None, kind: str | None = None, unacknowledged: bool = False,
               limit: int = 100, offset: int = 0) -> list[AlarmRecord]:
        """Alarms newest first."""
        limit, offset = page_bounds(limit, offset)
        where, params = ["1"], []
        if since is not None:
            where.append("ts >= ?")
            params.append(ts_text(since))
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if unacknowledged:
            where.append("acknowledged_at IS NULL")
        rows = self._query(f"SELECT * FROM alarms WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC "
                           "LIMIT ? OFFSET ?", [*params, limit, offset])
        return self._parse(rows, alarm_from_row, "alarm")

    def last_alarm_times(self, kind: str) -> dict[str, datetime]:
        """When each person last raised an alarm of this kind (e.g. care-watch re-alarm throttling)."""
        rows = self._query("SELECT person_id, max(ts) FROM alarms WHERE kind = ? AND person_id IS NOT NULL "
                           "GROUP BY person_id", (kind,))
        return {r[0]: parse_ts(r[1]) for r in rows}

    def pending_outbox(self, limit: int = 100, after: int = 0) -> list[OutboxRow]:
        """The oldest `limit` outbox rows with `seq` > `after`, oldest first."""
        rows = self._query("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (int(after), max(1, int(limit))))
        return [OutboxRow(r["seq"], r["event_id"], r["topic_kind"], r["payload"], parse_ts(r["created_at"]))
                for r in rows]

    def ack_outbox(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged outbox rows and mark their events synced; returns rows deleted."""
        seqs = [int(s) for s in seqs]
        deleted = 0
        with self._tx() as conn:
            for i in range(0, len(seqs), _CHUNK):
                chunk = seqs[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"UPDATE events SET synced = 1 WHERE event_id IN (SELECT event_id FROM outbox "
                             f"WHERE topic_kind = 'event' AND seq IN ({marks}))", chunk)
                deleted += conn.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk).rowcount
        return deleted

    def outbox_depth(self) -> int:
        return int(self._query("SELECT count(*) FROM outbox")[0][0])

    def _parse(self, rows: Iterable[sqlite3.Row], parse: Callable[[sqlite3.Row], T], what: str) -> list[T]:
        out = []
        for row in rows:
            try:
                out.append(parse(row))
            except (ValueError, TypeError) as exc:  # only a hand-edited database gets here
                log.error("malformed %s row %s in %s skipped: %s", what, row[0], self.path, exc)
        return out

    def events(self, since: datetime | None = None, until: datetime | None = None,
               person_id: str | None = None, decision: Literal["grant", "deny"] | None = None,
               limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[EventRecord]:
        """Events with since <= ts < until, oldest first (or newest first)."""
        limit, offset = page_bounds(limit, offset)
        where, params = ["1"], []
        for cond, value in (("ts >= ?", since and ts_text(since)), ("ts < ?", until and ts_text(until)),
                            ("person_id = ?", person_id), ("decision = ?", decision)):
            if value is not None:
                where.append(cond)
                params.append(value)
        order = "DESC" if newest_first else "ASC"
        rows = self._query(f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY ts {order}, "
                           f"event_id {order} LIMIT ? OFFSET ?", [*params, limit, offset])
        return self._parse(rows, event_from_row, "event")

    def get_event(self, event_id: str) -> EventRecord | None:
        rows = self._query("SELECT * FROM events WHERE event_id = ?", (event_id,))
        found = self._parse(rows, event_from_row, "event")
        return found[0] if found else None

    def purge_synced_events(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Retention: delete synced events (and their snapshots) older than this; unsynced ones stay."""
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM events WHERE synced = 1 AND ts < ? AND event_id NOT IN "
                                "(SELECT event_id FROM outbox)", (cutoff,)).rowcount

    # ------------------------------------------------------------------------------------ snapshots

    def add_snapshot(self, event_id: str, jpeg: bytes) -> bool:
        """Keep a face crop with its event; refused (False) when snapshots are off or it is not a JPEG."""
        if not self.snapshots:
            log.debug("snapshot for %s not kept: snapshots are off", event_id)
            return False
        if not isinstance(jpeg, bytes | bytearray) or bytes(jpeg[:3]) != b"\xff\xd8\xff":
            log.warning("snapshot for %s is not a JPEG and was not kept", event_id)
            return False
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO snapshots (event_id, jpeg, created_at) VALUES (?, ?, ?)",
                         (event_id, bytes(jpeg), ts_text(datetime.now(UTC))))
        return True

    def get_snapshot(self, event_id: str) -> bytes | None:
        rows = self._query("SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,))
        return bytes(rows[0][0]) if rows else None

    def purge_snapshots(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM snapshots WHERE created_at < ?", (cutoff,)).rowcount

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
