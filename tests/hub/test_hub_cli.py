"""`gate hub ...` as an office would use it, on the SQLite default: init (the database and the admin key,
mode 0600), gates and persons (templates made from a photo by the hub's own engine, the photo not
kept), status; every bad input one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.protocol.signing import SigningKey, parse_public_key

REPO = Path(__file__).resolve().parents[2]


def hub(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", "hub", *args, "--config", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env={k: v for k, v in os.environ.items()
                                                                  if k != "CREDENTIALS_DIRECTORY"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\ncommunity = "maple"\ndata_dir = "data"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n')
    return path


def test_an_office_day_with_the_hub_cli(config: Path, tmp_path: Path, hanks_path: Path) -> None:
    made = hub("init", config=config)
    assert made.returncode == 0, made.stderr
    parse_public_key(made.stdout.strip())  # the line for the gates' admin_public_keys
    data = tmp_path / "data"
    assert (data / "admin-key.pem").stat().st_mode & 0o777 == 0o600
    assert (data / "hub.db").stat().st_mode & 0o777 == 0o600
    gate = SigningKey.generate()
    assert hub("gate", "add", "north-1", gate.public_text, config=config).returncode == 0
    added = hub("person", "add", "--id", "R001", "--name", "Tom Hanks", "--unit", "3-1201", "--photo",
                str(hanks_path), config=config)
    assert added.returncode == 0, added.stderr
    assert hub("person", "suspend", "R001", config=config).returncode == 0
    listed = [json.loads(line) for line in hub("person", "list", config=config).stdout.splitlines()]
    assert listed == [{"id": "R001", "name": "Tom Hanks", "kind": "resident", "status": "suspended",
                       "unit": "3-1201", "allowed_gates": [], "directions": [], "templates": 1, "groups": []}]
    assert not list(data.glob("*.jpg")) and not list(data.glob("*.png"))  # no photo kept
    status = json.loads(hub("status", config=config).stdout)
    assert status["community"] == "maple" and status["version"] == 3
    assert [(g["gate_id"], g["acked_version"], g["available"], g["last_event"]) for g in status["gates"]] == [
        ("north-1", None, None, None)]  # registered, never heard of yet


@pytest.mark.parametrize("args, expect", [
    (("person", "suspend", "NOPE"), "no person NOPE"),
    (("person", "add", "--id", "bad id", "--name", "x"), "bad id"),
    (("gate", "add", "g1", "ed25519:nope"), "public_key"),
    (("person", "import", "/nonexistent.csv"), "nonexistent"),
    (("run",), "no admin key"),
])
def test_bad_input_is_one_line_and_exit_2(config: Path, args: tuple[str, ...], expect: str) -> None:
    done = hub(*args, config=config)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expect in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text('[hub]\ncommunity = "no spaces allowed"\n')
    done = hub("status", config=bad)
    assert done.returncode == 2 and "community" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = hub("status", config=tmp_path / "missing.toml")
    assert done.returncode == 2 and "missing.toml" in done.stderr


def _listed(config: Path, group: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in hub("person", "list", "--group", group, config=config).stdout.splitlines()]


def test_groups_and_kept_photos_go_with_the_person(tmp_path: Path, hanks_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\ncommunity = "maple"\ndata_dir = "data"\nkeep_photos = true\n'
                      '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n')
    assert hub("init", config=config).returncode == 0
    done = hub("person", "add", "--id", "R001", "--name", "Tom", "--photo", str(hanks_path), "--group", "Building 2",
               "--group", "care", config=config)
    assert done.returncode == 0, done.stderr
    assert hub("person", "add", "--id", "R002", "--name", "Li", "--group", "Building 3", config=config).returncode == 0
    kept = tmp_path / "data" / "photos" / "R001.jpg"
    assert kept.read_bytes() == hanks_path.read_bytes() and kept.stat().st_mode & 0o777 == 0o600
    listed = _listed(config, "care")
    assert [(p["id"], p["groups"]) for p in listed] == [("R001", ["Building 2", "care"])]
    assert hub("person", "groups", "R001", "--group", "Building 3", config=config).returncode == 0
    listed = _listed(config, "Building 3")
    assert [p["id"] for p in listed] == ["R001", "R002"]
    assert hub("person", "delete", "R001", config=config).returncode == 0
    assert not kept.exists()  # the photo is deleted with the person
    listed = _listed(config, "Building 3")
    assert [p["id"] for p in listed] == ["R002"]
