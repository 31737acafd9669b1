"""`gate backup` while the store is being written, and `gate restore` with its refusals."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.wait import wait_until

from edge.cli import main as gate_main
from edge.store import EventRecord, Store
from edge.store.backup import BackupError, backup, in_use, restore


def _event(i: int) -> EventRecord:
    return EventRecord(ts=datetime.now(UTC), gate_id="gate-1", direction="in", decision="deny",
                       reasons=({"code": "unknown_face", "n": i},))


def _ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {str(r[0]) for r in conn.execute("SELECT event_id FROM events")}
    finally:
        conn.close()


def _cli(argv: list[str]) -> int:
    return gate_main(argv)  # the installed `gate` command's entry point


def test_backup_while_writing_then_restore(tmp_path: Path) -> None:
    db = tmp_path / "data" / "gate.db"
    store = Store.open(db)
    committed: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            committed.append(store.record_event(_event(i)))
            i += 1

    for i in range(300):  # some history first, so the copy takes a moment
        committed.append(store.record_event(_event(-i)))
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: len(committed) >= 320, 30, "the writer to be writing")
        before = set(committed)  # every event committed before the backup began
        info = backup(db, tmp_path / "backups" / "gate-backup.db")
        done = len(committed)
        wait_until(lambda: len(committed) >= done + 5, 30, "the writer to go on writing after the backup")
    finally:
        stop.set()
        thread.join()
    after = set(committed)
    store.close()

    copy = tmp_path / "backups" / "gate-backup.db"
    assert info.path == copy and info.events >= len(before)
    assert not (tmp_path / "backups" / "gate-backup.db-wal").exists()  # one self-contained file
    in_copy = _ids(copy)
    assert before <= in_copy <= after
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # consistent: every event has its outbox row, written in the same transaction
    assert conn.execute("SELECT count(*) FROM outbox WHERE topic_kind = 'event'").fetchone()[0] == len(in_copy)
    conn.close()

    # restore over the (newer) live store: the backup's content comes back, the old store is kept
    restored = restore(db, copy)
    assert restored.events == len(in_copy)
    assert _ids(db) == in_copy
    assert _ids(db.with_name("gate.db.bak")) == after
    with Store.open(db) as s:
        assert s.integrity_check() == "ok"
        assert s.get_event(next(iter(before))) is not None


def test_restore_refuses_a_bad_backup_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    with Store.open(db) as s:
        s.record_event(_event(1))
    before = _ids(db)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a readable SQLite database"):
        restore(db, junk)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not an edge-gate store"):
        restore(db, foreign)
    with pytest.raises(BackupError, match="no backup"):
        restore(db, tmp_path / "missing.db")
    assert _ids(db) == before and not db.with_name("gate.db.bak").exists()


HOLDER = r"""
import sys, time
from pathlib import Path
from edge.store import Store
s = Store.open(Path(sys.argv[1]))
s.integrity_check()
print("open", flush=True)
sys.stdin.readline()
s.close()
"""


def test_restore_refuses_while_the_store_is_open_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    with Store.open(db) as s:
        s.record_event(_event(1))
    good = tmp_path / "good.db"
    backup(db, good)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert in_use(db)
        with pytest.raises(BackupError, match="in use"):
            restore(db, good)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
    assert not in_use(db)
    assert restore(db, good).events == 1


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gate.toml"
    cfg.write_text(f'[gate]\ndata_dir = "{tmp_path / "data"}"\n')
    out = tmp_path / "b.db"
    assert _cli(["backup", str(out), "--config", str(cfg)]) == 1  # no store yet
    assert "no store" in capsys.readouterr().err
    with Store.open(tmp_path / "data" / "gate.db") as s:
        s.record_event(_event(7))
    assert _cli(["backup", str(out), "--config", str(cfg)]) == 0
    assert "1 events, integrity ok" in capsys.readouterr().out
    assert _cli(["restore", str(out), "--config", str(cfg)]) == 0
    assert "gate.db.bak" in capsys.readouterr().out
    assert _cli(["restore", str(tmp_path / "nope.db"), "--config", str(cfg)]) == 1
