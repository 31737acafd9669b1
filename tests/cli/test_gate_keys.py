"""`gate keys init|show` and where the gate's own key comes from: made once with mode 0600, never
replaced, refused when other users may read it, taken from $CREDENTIALS_DIRECTORY under systemd; bad
cases are one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.protocol.signing import SigningKey, key_id, parse_public_key
from edge.sync.identity import GateKeyError, load_identity

REPO = Path(__file__).resolve().parents[2]


def gate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60, env={**os.environ, **(env or {})})


def test_init_makes_a_private_key_once_and_show_prints_its_public_half(tmp_path: Path) -> None:
    made = gate("keys", "init", "--data-dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    path = tmp_path / "gate-key.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    public = made.stdout.strip()
    assert key_id(parse_public_key(public)) == SigningKey.load(path).key_id
    shown = gate("keys", "show", "--json", "--data-dir", str(tmp_path))
    doc = json.loads(shown.stdout)
    assert doc["public_key"] == public and doc["gate_id"] == "gate-1" and len(doc["key_id"]) == 16
    again = gate("keys", "init", "--data-dir", str(tmp_path))
    assert again.returncode == 1 and "refusing" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert gate("keys", "show", "--data-dir", str(tmp_path)).stdout.strip() == public  # unchanged


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_other_users_may_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    SigningKey.generate().save(tmp_path / "gate-key.pem")
    (tmp_path / "gate-key.pem").chmod(mode)
    shown = gate("keys", "show", "--data-dir", str(tmp_path))
    assert shown.returncode == 2 and "chmod 600" in shown.stderr and "Traceback" not in shown.stderr
    with pytest.raises(GateKeyError, match="readable by other users"):
        load_identity(None, tmp_path)


def test_show_without_a_key_and_a_broken_key_are_one_line(tmp_path: Path) -> None:
    missing = gate("keys", "show", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "gate keys init" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "gate-key.pem"
    bad.write_text("not a key")
    bad.chmod(0o600)
    broken = gate("keys", "show", "--data-dir", str(tmp_path))
    assert broken.returncode == 2 and "gate keys init" in broken.stderr and len(broken.stderr.strip().splitlines()) == 1


def test_a_systemd_credential_wins_and_is_never_replaced(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    key = SigningKey.generate()
    key.save(creds / "gate-key")
    (creds / "gate-key").chmod(0o440)  # systemd's own mode for credentials
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    got = load_identity(None, tmp_path / "data", environ=env)
    assert got.key.key_id == key.key_id and not got.created and not (tmp_path / "data" / "gate-key.pem").exists()
    shown = gate("keys", "show", "--json", "--data-dir", str(tmp_path / "data"), env=env)
    assert json.loads(shown.stdout)["key_id"] == key.key_id


def test_the_gate_makes_its_key_at_the_first_start_and_keeps_it(tmp_path: Path) -> None:
    first = load_identity(None, tmp_path)
    second = load_identity(None, tmp_path)
    assert first.created and not second.created and first.key.key_id == second.key.key_id
    configured = tmp_path / "elsewhere" / "north-1.pem"
    assert load_identity(configured, tmp_path).path == configured and configured.exists()
