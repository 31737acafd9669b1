"""The store's versioned schema: one function per version, applied in order, each in its own
transaction; `migrate(conn)` brings a database to the newest version or refuses one that is newer."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from edge.store.errors import SchemaTooNewError

Migration = Callable[[sqlite3.Connection], None]


def _v1(conn: sqlite3.Connection) -> None:
    statements = [
        """CREATE TABLE persons (
            id TEXT PRIMARY KEY, name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('resident', 'visitor', 'staff')),
            status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'blocked')),
            valid_from TEXT, valid_until TEXT,
            max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 0),
            uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
            allowed_gates TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(allowed_gates)),
            directions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(directions)),
            schedule TEXT CHECK (schedule IS NULL OR json_valid(schedule)),
            care_watch_hours REAL CHECK (care_watch_hours IS NULL OR care_watch_hours > 0),
            unit TEXT, updated_at TEXT NOT NULL)""",
        "CREATE INDEX persons_name ON persons(name COLLATE NOCASE)",
        """CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL, dim INTEGER NOT NULL CHECK (dim > 0),
            embedding BLOB NOT NULL CHECK (length(embedding) = 4 * dim), created_at TEXT NOT NULL)""",
        "CREATE INDEX templates_model_person ON templates(model_id, person_id)",
        "CREATE INDEX templates_person ON templates(person_id)",
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY, ts TEXT NOT NULL, gate_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), person_id TEXT,
            decision TEXT NOT NULL CHECK (decision IN ('grant', 'deny')),
            reasons TEXT NOT NULL CHECK (json_valid(reasons)),
            alarms TEXT NOT NULL CHECK (json_valid(alarms)),
            temperature TEXT CHECK (temperature IS NULL OR json_valid(temperature)),
            scores TEXT CHECK (scores IS NULL OR json_valid(scores)),
            synced INTEGER NOT NULL DEFAULT 0 CHECK (synced IN (0, 1)))""",
        "CREATE INDEX events_ts ON events(ts)",
        "CREATE INDEX events_person_ts ON events(person_id, ts)",
        "CREATE INDEX events_synced_ts ON events(synced, ts)",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, topic_kind TEXT NOT NULL,
            payload TEXT NOT NULL CHECK (json_valid(payload)), created_at TEXT NOT NULL)""",
        "CREATE INDEX outbox_event ON outbox(event_id)",
        """CREATE TABLE alarms (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
            message TEXT NOT NULL, details TEXT NOT NULL CHECK (json_valid(details)),
            gate_id TEXT, person_id TEXT, acknowledged_by TEXT, acknowledged_at TEXT)""",
        "CREATE INDEX alarms_ts ON alarms(ts)",
        "CREATE INDEX alarms_kind_person ON alarms(kind, person_id, ts)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            details TEXT NOT NULL CHECK (json_valid(details)))""",
        "CREATE INDEX audit_ts ON audit(ts)",
        """CREATE TABLE guards (
            name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('viewer', 'operator')),
            password_hash TEXT NOT NULL, created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)))""",
        """CREATE TABLE passages (
            person_id TEXT NOT NULL, ts TEXT NOT NULL, gate_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            PRIMARY KEY (person_id, ts, gate_id, direction)) WITHOUT ROWID""",
        "CREATE INDEX passages_ts ON passages(ts)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE snapshots (
            event_id TEXT PRIMARY KEY REFERENCES events(event_id) ON DELETE CASCADE,
            jpeg BLOB NOT NULL, created_at TEXT NOT NULL)""",
        "CREATE INDEX snapshots_created ON snapshots(created_at)",
    ]
    for sql in statements:
        conn.execute(sql)


def _v2(conn: sqlite3.Connection) -> None:
    """Alarm groups (edge.store.alarms): repeats of one source counted on one row (`count`, `last_seen`),
    the source (`group_key`; NULL on older rows, which then start no group), and what the last outbox row
    of the group carried (`published_count`, `published_at`)."""
    statements = [
        "ALTER TABLE alarms ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1)",
        "ALTER TABLE alarms ADD COLUMN last_seen TEXT",
        "ALTER TABLE alarms ADD COLUMN group_key TEXT",
        "ALTER TABLE alarms ADD COLUMN published_count INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE alarms ADD COLUMN published_at TEXT",
        "UPDATE alarms SET last_seen = ts, published_at = ts",
        "CREATE INDEX alarms_last_seen ON alarms(last_seen)",
        "CREATE INDEX alarms_open_group ON alarms(group_key, last_seen) WHERE acknowledged_at IS NULL",
        "CREATE INDEX alarms_unpublished ON alarms(published_at) WHERE count > published_count",
    ]
    for sql in statements:
        conn.execute(sql)


def _v3(conn: sqlite3.Connection) -> None:
    """A person's card number (what the gate sends to an access panel, drivers.panel; NULL: no card)."""
    conn.execute("ALTER TABLE persons ADD COLUMN card INTEGER CHECK (card IS NULL OR card BETWEEN 0 AND 4294967295)")


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3)


def schema_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database to the newest version, one transaction per migration; return the version.

    `conn` must be in autocommit mode (isolation_level None). A database newer than `migrations`
    is refused; a failed migration is rolled back and leaves the previous version intact.
    """
    target = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")  # another process migrating at the same time waits here
        try:
            version = schema_version(conn)
            if version > target:
                raise SchemaTooNewError(
                    f"database schema version {version} is newer than this edge-gate knows ({target}); "
                    "upgrade edge-gate or restore a matching backup")
            if version == target:
                conn.execute("COMMIT")
                return version
            migrations[version](conn)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
