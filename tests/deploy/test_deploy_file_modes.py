"""The gate's data is its user's only, as an operator meets it: the real `gate` command (a subprocess,
started under umask 022) makes the data dir 0700 and its files 0600, tightens a data dir left open with
a warning, writes `gate backup` and `gate restore` results 0600; `gate selftest` fails on an open store
with the one `chmod` line that fixes it, and passes once that line is run (docs/security.md)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deploy_helpers import VENV_BIN, sim_config

from edge.config import load_config
from edge.selftest import check_file_modes
from edge.store import EventRecord, Store

GATE = str(VENV_BIN / "gate")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def gate(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `gate` command, started by a shell whose umask is 022."""
    return subprocess.run([GATE, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=120,
                          umask=0o022)


def _store_with_an_event(db: Path) -> None:
    with Store.open(db) as store:
        store.record_event(EventRecord(ts=datetime.now(UTC), gate_id="gate-1", direction="in", decision="deny",
                                       reasons=({"code": "unknown_face"},)))


@pytest.mark.parametrize(("command", "then"), [
    (("guard", "add", "night", "--role", "viewer", "--password-stdin"), ("guard", "list")),  # opens the store
    (("keys", "init"), ("keys", "show")),  # writes the gate's key into the data dir
])
def test_a_data_dir_left_open_is_tightened_with_a_warning(tmp_path: Path, command: tuple[str, ...],
                                                         then: tuple[str, ...]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    proc = gate(*command, "--data-dir", data, stdin="correct horse battery\n")
    assert proc.returncode == 0, proc.stderr
    assert f"data dir {data} was mode 0755 (open to other users); changed to 0700" in proc.stderr
    assert _mode(data) == 0o700
    files = {p.name: _mode(p) for p in data.iterdir()}
    assert files and set(files.values()) == {0o600}, files  # gate.db or gate-key.pem

    again = gate(*then, "--data-dir", data)
    assert again.returncode == 0, again.stderr
    assert "open to other users" not in again.stderr  # nothing left to tighten, nothing said


def test_backup_and_restore_write_0600_whatever_the_umask(tmp_path: Path) -> None:
    cfg = tmp_path / "gate.toml"
    data = tmp_path / "data"
    cfg.write_text(f'[gate]\ndata_dir = "{data}"\n')
    _store_with_an_event(data / "gate.db")
    out = tmp_path / "backups" / "gate-2026-03-01.db"  # its folder does not exist yet

    made = gate("backup", out, "--config", cfg)
    assert made.returncode == 0, made.stderr
    assert _mode(out) == 0o600 and _mode(out.parent) == 0o700

    restored = gate("restore", out, "--config", cfg)
    assert restored.returncode == 0, restored.stderr
    assert _mode(data / "gate.db") == 0o600 and _mode(data / "gate.db.bak") == 0o600
    assert _mode(data) == 0o700


def test_the_library_backup_is_0600_under_umask_022(tmp_path: Path) -> None:
    """Not through the `gate` command (which sets umask 077): backup() itself makes its file private."""
    from edge.store.backup import backup

    _store_with_an_event(tmp_path / "data" / "gate.db")
    old = os.umask(0o022)
    try:
        info = backup(tmp_path / "data" / "gate.db", tmp_path / "b.db")
    finally:
        os.umask(old)
    assert info.events == 1 and _mode(tmp_path / "b.db") == 0o600


def _selftest(cfg: Path) -> tuple[int, dict[str, dict[str, object]]]:
    proc = gate("selftest", "--config", cfg, "--json", "--timeout", "5")
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def test_selftest_fails_on_an_open_store_and_passes_after_the_fix(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    db = load_config(cfg).gate.data_dir / "gate.db"
    _store_with_an_event(db)
    db.chmod(0o644)

    code, checks = _selftest(cfg)
    assert code == 1
    assert {name for name, c in checks.items() if not c["ok"]} == {"permissions"}
    detail = str(checks["permissions"]["detail"])
    assert "gate.db 0644" in detail and detail.endswith(f"fix: chmod 600 {db}"), detail
    assert _mode(db) == 0o644  # the self-test reports, it changes nothing

    fix = detail.rsplit("fix: ", 1)[1]
    subprocess.run(shlex.split(fix), check=True)
    code, checks = _selftest(cfg)
    assert code == 0 and checks["permissions"]["ok"], checks["permissions"]


@pytest.mark.parametrize(("opened", "fix"), [
    ({"": 0o755}, "chmod 700 {data}"),
    ({"gate-key.pem": 0o644}, "chmod 600 {data}/gate-key.pem"),
    ({"": 0o750, "gate.db": 0o640, "gate.db-wal": 0o640, "backup-1.db": 0o644, "photos/p-1.jpg": 0o644},
     "chmod -R go= {data}"),
])
def test_file_modes_check_names_what_is_open_and_its_fix_works(tmp_path: Path, opened: dict[str, int],
                                                               fix: str) -> None:
    cfg = load_config(sim_config(tmp_path))
    data = cfg.gate.data_dir
    for name in ("gate.db", "gate.db-wal", "gate-key.pem", "backup-1.db", "photos/p-1.jpg"):
        (data / name).parent.mkdir(mode=0o700, exist_ok=True)
        (data / name).write_bytes(b"private")
        (data / name).chmod(0o600)
    assert check_file_modes(cfg).ok
    for name, mode in opened.items():
        (data / name).chmod(mode)

    failed = check_file_modes(cfg)
    assert not failed.ok
    assert failed.detail.endswith(f"fix: {fix.format(data=data)}"), failed.detail
    shown = [f"{name or data} {mode:04o}" for name, mode in opened.items()]
    assert sum(text in failed.detail for text in shown) == min(3, len(shown)), failed.detail  # 3, then a count
    assert (f"and {len(shown) - 3} more" in failed.detail) == (len(shown) > 3)
    subprocess.run(shlex.split(fix.format(data=data)), check=True)
    assert check_file_modes(cfg).ok
