"""`gate backup` and `gate restore`: a consistent copy of the store while the gate runs, and its way back.

The backup uses SQLite's online backup API in one step, i.e. inside one read transaction: in WAL
mode the gate keeps writing meanwhile, and the copy is the database as of the moment it began. The
copy is a single self-contained file (rollback journal mode), checked before it replaces FILE.
Restore checks the backup first, refuses while a process has the store open, and keeps the old
database as gate.db.bak. Every file written here (the backup, the restored store, gate.db.bak) is mode
0600 whatever the caller's umask: they hold the residents' face templates.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.filemodes import DIR_MODE, create_private, private_dir
from edge.store import Store, StoreError
from edge.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

WAL_DMS_BYTE = 128  # SQLite (unix VFS) holds a shared lock here in the -shm file while a connection is open


class BackupError(RuntimeError):
    """A backup or restore could not be made; nothing was replaced."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    schema_version: int
    events: int


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _check(conn: sqlite3.Connection, what: Path) -> BackupInfo:
    """Integrity, schema version and event count of an open database; BackupError when it is unusable."""
    try:
        problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{what} fails the integrity check: {'; '.join(problems[:5])}")
        tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"schema_version", "events"} <= tables:
            raise BackupError(f"{what} is not an edge-gate store (no schema_version/events tables)")
        version = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a readable SQLite database: {exc}") from exc
    if version > len(MIGRATIONS):
        raise BackupError(f"{what} has schema version {version}, newer than this edge-gate ({len(MIGRATIONS)})")
    return BackupInfo(what, what.stat().st_size, version, events)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: sqlite3.Connection, dest: Path) -> None:
    """Online backup of `src` into a new file `dest` (mode 0600), made self-contained (no -wal) and synced."""
    dest.unlink(missing_ok=True)
    create_private(dest)
    out = sqlite3.connect(dest, isolation_level=None)
    try:
        src.backup(out, pages=-1)  # one step: one read transaction, a consistent snapshot
        out.execute("PRAGMA journal_mode=DELETE")
    finally:
        out.close()
    with dest.open("rb+") as f:
        os.fsync(f.fileno())


def backup(db: Path, dest: Path) -> BackupInfo:
    """Copy the store `db` to `dest` while it may be in use; `dest` is replaced only by a checked copy."""
    if not db.is_file():
        raise BackupError(f"no store at {db}")
    dest = dest.resolve()
    if dest == db.resolve():
        raise BackupError("the backup file must not be the store itself")
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)  # a folder made here is private
        src = _connect(db)
        try:
            _copy(src, part)
        finally:
            src.close()
        check = _connect(part, readonly=True)
        try:
            info = _check(check, part)
        finally:
            check.close()
    except (sqlite3.Error, OSError) as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"backup of {db} failed: {exc}") from exc
    except BackupError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    log.info("backup of %s written to %s (%s events)", db, dest, info.events)
    return BackupInfo(dest, dest.stat().st_size, info.schema_version, info.events)


def in_use(db: Path) -> bool:
    """True when another process has the WAL store open (it holds the -shm file's DMS lock).

    Do not call this from a process that itself has `db` open: closing the probe's descriptor would
    drop that process's own POSIX locks on the file.
    """
    shm = db.with_name(db.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, WAL_DMS_BYTE)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, WAL_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def restore(db: Path, source: Path) -> BackupInfo:
    """Replace the store `db` by the backup `source`; the old store is kept as `db`.bak."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    try:
        conn = _connect(source, readonly=True)
        try:
            info = _check(conn, source)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{source} is not a readable SQLite database: {exc}") from exc
    if in_use(db):
        raise BackupError(f"{db} is in use (is the gate running? `systemctl stop edge-gate` first)")
    try:
        private_dir(db.parent)
    except OSError as exc:
        raise BackupError(f"cannot make the data dir {db.parent} (mode 0700): {exc}") from exc
    part = db.with_name(db.name + ".restore")
    bak = db.with_name(db.name + ".bak")
    try:
        src = _connect(source, readonly=True)
        try:
            _copy(src, part)
        finally:
            src.close()
        if db.exists():
            old = _connect(db)  # its WAL content goes into the .bak too
            try:
                _copy(old, bak)
            finally:
                old.close()
    except (sqlite3.Error, OSError) as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"restore of {db} from {source} failed before anything was replaced: {exc}") from exc
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            db.with_name(db.name + suffix).unlink()
    os.replace(part, db)
    _fsync_dir(db.parent)
    try:
        with Store.open(db) as store:  # back to WAL mode, migrated to this version
            result = store.integrity_check()
    except StoreError as exc:
        raise BackupError(f"restored {db} does not open: {exc}; the previous store is {bak}") from exc
    if result != "ok":
        raise BackupError(f"restored {db} fails the integrity check ({result}); the previous store is {bak}")
    log.info("restored %s from %s (%s events); previous store kept as %s", db, source, info.events, bak)
    return BackupInfo(db, db.stat().st_size, info.schema_version, info.events)
