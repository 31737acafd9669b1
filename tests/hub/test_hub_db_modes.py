"""The hub's SQLite register is its user's only under any umask: the same helper as the gate's store
(edge.filemodes) makes the file and its -wal/-shm 0600 and its directory 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.hub.db import HubDatabase


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_hub_database_is_private_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "hub"
        with HubDatabase.open(str(data / "hub.db")) as db:
            with db.tx():
                db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("probe", "1"))
            files = {p.name: _mode(p) for p in data.iterdir()}
        (tmp_path / "plain").write_text("x")
        assert _mode(tmp_path / "plain") == 0o644  # the umask really is permissive
    finally:
        os.umask(old)
    assert files == {"hub.db": 0o600, "hub.db-wal": 0o600, "hub.db-shm": 0o600}
    assert _mode(data) == 0o700
