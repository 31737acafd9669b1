"""The store's files are its user's only, whatever the umask it is opened under: its directory 0700, the
database and its -wal/-shm 0600 (edge.filemodes; docs/security.md, "File modes"). Real files, a real
permissive umask."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.store import EventRecord, Store


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The process's umask is 022 (a shell's usual one) for the test, and back afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _event() -> EventRecord:
    return EventRecord(ts=datetime.now(UTC), gate_id="gate-1", direction="in", decision="deny",
                       reasons=({"code": "unknown_face"},))


def test_a_store_made_under_umask_022_is_private(tmp_path: Path, umask_022: None) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(plain) == 0o644  # the umask really is permissive
    data = tmp_path / "var" / "data"
    with Store.open(data / "gate.db") as store:
        store.record_event(_event())  # the -wal and -shm exist while the store is open
        files = {p.name: _mode(p) for p in data.iterdir()}
    assert files == {"gate.db": 0o600, "gate.db-wal": 0o600, "gate.db-shm": 0o600}
    assert _mode(data) == 0o700
    assert _mode(data / "gate.db") == 0o600  # after the close too


def test_an_open_store_left_by_an_older_version_is_tightened_with_a_warning(
        tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sqlite3.connect(data / "gate.db").close()  # made as before: 0644 in a 0755 directory
    assert (_mode(data), _mode(data / "gate.db")) == (0o755, 0o644)
    with caplog.at_level(logging.WARNING, logger="edge.filemodes"):
        Store.open(data / "gate.db").close()
    assert (_mode(data), _mode(data / "gate.db")) == (0o700, 0o600)
    assert f"data dir {data} was mode 0755 (open to other users); changed to 0700" in caplog.text
    assert f"database file {data / 'gate.db'} was mode 0644 (open to other users); changed to 0600" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.filemodes"):
        Store.open(data / "gate.db").close()
    assert "open to other users" not in caplog.text  # nothing left to change, nothing said


def test_tighten_modes_false_opens_and_leaves_the_modes_as_found(tmp_path: Path, umask_022: None) -> None:
    data = tmp_path / "data"
    with Store.open(data / "gate.db") as store:
        store.record_event(_event())
    data.chmod(0o755)
    (data / "gate.db").chmod(0o644)
    with Store.open(data / "gate.db", tighten_modes=False) as store:  # the self-test's way: it reports them
        assert store.integrity_check() == "ok"
    assert (_mode(data), _mode(data / "gate.db")) == (0o755, 0o644)
