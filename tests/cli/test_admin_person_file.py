"""`gate admin push` given a bad person file (or key), through the real command in a subprocess: one
line on stderr naming the file and the row with the fix, exit 2, no traceback, nothing published (each
fails before the broker, which is a closed port here). A good file of every field gets as far as the
broker. The format is docs/person-files.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

from edge.protocol.signing import AdminKey

NO_BROKER = "mqtt://127.0.0.1:9"  # the discard port: nothing listens, so a push that got there fails
EMB = '"[[0.1, 0.2, 0.3]]"'
CSV_HEAD = "id,name,unit,embeddings,model_id\n"


def push(tmp_path: Path, person_file: Path, *extra: str, kind: str = "--delta") -> subprocess.CompletedProcess[str]:
    key = tmp_path / "admin.pem"
    if not key.exists():
        AdminKey.generate().save(key)
    return subprocess.run([sys.executable, "-m", "edge", "admin", "push", "--broker", NO_BROKER, "--community",
                           "oak-garden", "--key", str(key), kind, str(person_file), "--timeout", "5", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


CASES: list[tuple[str, str, bytes, str]] = [
    # (case, file name, content, what the one line says after "FILE")
    ("missing column", "p.csv", b"id,unit\nR1,1-101\n", " row 1: missing column 'name'"),
    ("missing id column", "p.csv", b"name,unit\nTom,1-101\n", " row 1: missing column 'id'"),
    ("unknown column", "p.csv", b"id,nmae\nR1,Tom\n", " row 1: unknown column 'nmae'; did you mean 'name'?"),
    ("bad date", "p.csv", (CSV_HEAD.replace("\n", ",valid_until\n") + f"R1,Tom,1-101,{EMB},sface_2021dec,"
                           "2026-13-01T00:00:00Z\n").encode(),
     " row 2 (id R1): valid_until '2026-13-01T00:00:00Z' is not a date and time with its zone"),
    ("date without a zone", "p.csv", (CSV_HEAD.replace("\n", ",valid_from\n") + f"R1,Tom,1-101,{EMB},"
                                      "sface_2021dec,2026-12-01T08:00\n").encode(),
     " row 2 (id R1): valid_from '2026-12-01T08:00' is not a date and time with its zone"),
    ("dates in the wrong order", "p.json", json.dumps([{"id": "V1", "name": "Guest", "embeddings": [[0.1]],
                                                         "model_id": "m", "valid_from": "2026-12-02T00:00:00Z",
                                                         "valid_until": "2026-12-01T00:00:00Z"}]).encode(),
     " person 1 (id V1): person V1: valid_until must be after valid_from"),
    ("unknown field", "p.json", json.dumps({"persons": [{"id": "R1", "name": "Tom", "alowed_gates": ["g1"]}]}).encode(),
     " person 1 (id R1): unknown field 'alowed_gates'; did you mean 'allowed_gates'?"),
    ("unknown top-level key", "p.json", b'{"persons": [], "delete": ["R1"]}',
     ": unknown key 'delete' at the top; did you mean 'deletes'?"),
    ("bad JSON", "p.json", b'[{"id": "R1",\n "name": "Tom",}]',
     " line 2 column 16: not valid JSON (Expecting property name"),
    ("NaN in JSON", "p.json", b'[{"id": "R1", "name": "Tom", "care_watch_hours": NaN}]', ": not valid JSON (NaN"),
    ("not a person", "p.json", b'["R1"]', " person 1: a person is a JSON object"),
    ("missing photo", "p.csv", b"id,name,photo\nR1,Tom,faces/tom.jpg\n",
     " row 2 (id R1): photo '{dir}/faces/tom.jpg' not found (a photo path is relative to the person file)"),
    ("photo that is no image", "p.csv", b"id,name,photo\nR1,Tom,p.csv\n",
     " row 2 (id R1): photo '{dir}/p.csv' is not an image OpenCV can read (use JPEG or PNG)"),
    ("wrong encoding", "p.csv", "id,name,unit\nR1,Jos\u00e9,1-101\n".encode("latin-1"),
     " line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    ("second row bad", "p.csv", (CSV_HEAD + f"R1,Tom,1-101,{EMB},sface_2021dec\nR2,Ann,1-102,{EMB},\n").encode(),
     " row 3 (id R2): embeddings need a model_id"),
    ("bad schedule text", "p.csv", b"id,name,schedule,photo\nR1,Tom,mon-fri 7am-10pm,x.jpg\n",
     " row 2 (id R1): '7am-10pm' is not a time window HH:MM-HH:MM"),
    ("bad schedule day", "p.csv", b"id,name,schedule,photo\nR1,Tom,mon-fry 07:00-22:00,x.jpg\n",
     " row 2 (id R1): 'mon-fry' is not a day or a range of days"),
    ("bad schedule time", "p.json", json.dumps([{"id": "R1", "name": "Tom", "embeddings": [[0.1]], "model_id": "m",
                                                 "schedule": {"mon": [["07:00", "25:00"]]}}]).encode(),
     " person 1 (id R1): not a time of day HH:MM: '25:00'"),
    ("bad direction", "p.csv", (CSV_HEAD.replace("\n", ",directions\n") + f"R1,Tom,1-101,{EMB},m,sideways\n").encode(),
     " row 2 (id R1): directions.0: Input should be 'in' or 'out'"),
    ("bad kind", "p.csv", (CSV_HEAD.replace("\n", ",kind\n") + f"R1,Tom,1-101,{EMB},m,tenant\n").encode(),
     " row 2 (id R1): kind: Input should be 'resident', 'visitor' or 'staff'"),
    ("bad number", "p.csv", (CSV_HEAD.replace("\n", ",max_uses\n") + f"R1,Tom,1-101,{EMB},m,three\n").encode(),
     " row 2 (id R1): max_uses 'three' is not a whole number"),
    ("duplicate id", "p.csv", (CSV_HEAD + f"R1,Tom,1-101,{EMB},m\nR1,Tom,1-101,{EMB},m\n").encode(),
     " row 3 (id R1): id R1 appears again (first at row 2 (id R1))"),
    ("too many cells", "p.csv", b"id,name\nR1,Hanks, Tom\n", " row 2 (id R1): 3 cells but the header names 2 columns"),
    ("bad action", "p.csv", b"id,name,action\nR1,Tom,remove\n", " row 2 (id R1): action 'remove' is neither"),
    ("empty file", "p.csv", b"", ": empty; the first row names the columns"),
]


@pytest.mark.parametrize("case, name, content, says", CASES, ids=[c[0] for c in CASES])
def test_a_bad_person_file_gives_one_line_and_exit_2(tmp_path: Path, case: str, name: str, content: bytes,
                                                     says: str) -> None:
    person_file = tmp_path / name
    person_file.write_bytes(content)
    proc = push(tmp_path, person_file)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"gate admin push: {person_file}{says.format(dir=tmp_path)}"), proc.stderr


@pytest.mark.parametrize("what", ["missing", "a directory"])
def test_an_unreadable_person_file(tmp_path: Path, what: str) -> None:
    person_file = tmp_path / "persons.csv"
    if what == "a directory":
        person_file.mkdir()
    proc = push(tmp_path, person_file)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"gate admin push: {person_file}: cannot read it ("), proc.stderr
    assert "check the path and its permissions" in proc.stderr


def test_a_delete_in_a_snapshot_and_a_bad_key(tmp_path: Path) -> None:
    person_file = tmp_path / "p.csv"
    person_file.write_text(CSV_HEAD.replace("\n", ",action\n") + f"R1,Tom,1-101,{EMB},m,\nR2,,,,,delete\n")
    proc = push(tmp_path, person_file, kind="--snapshot")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"gate admin push: {person_file}: a snapshot replaces the whole list: "
                                   "it has no deletes or patches")
    (tmp_path / "admin.pem").write_text("not a key\n")
    proc = push(tmp_path, person_file)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"gate admin push: --key {tmp_path / 'admin.pem'}: not a usable admin private key")


def test_a_good_file_of_every_field_gets_as_far_as_the_broker(tmp_path: Path) -> None:
    person_file = tmp_path / "p.csv"
    person_file.write_text(
        "id,name,kind,status,unit,valid_from,valid_until,max_uses,allowed_gates,directions,schedule,"
        "care_watch_hours,embeddings,model_id,action\n"
        f'V1,Guest,visitor,active,2-201,2026-12-01T08:00:00+08:00,2026-12-08T08:00:00Z,3,"gate-a;gate-b",in,'
        f'"mon-fri 07:00-22:00; sat 09:00-12:00",12,{EMB},sface_2021dec,\n'
        "R9,,,,,,,,,,,,,,delete\n", encoding="utf-8")
    proc = push(tmp_path, person_file)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # the broker is not there: refused, one line
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("gate admin: "), proc.stderr
    assert str(person_file) not in proc.stderr  # the file itself was fine


def test_the_documented_examples_are_valid_files(tmp_path: Path, hanks_path: Path, t1_path: Path) -> None:
    """The CSV and JSON examples of docs/person-files.md read as they are documented (photos put in place)."""
    from edge.admin.person_file import read_person_file

    doc = (REPO / "docs" / "person-files.md").read_text(encoding="utf-8")
    (tmp_path / "photos").mkdir()
    for name in ("r001.jpg", "r002.jpg", "s001.jpg"):
        shutil.copy(t1_path, tmp_path / "photos" / name)
    shutil.copy(hanks_path, tmp_path / "photos" / "v001.png")
    found = {}
    for lang in ("csv", "json"):
        block = re.search(rf"```{lang}\n(.*?)```", doc, re.S)
        assert block is not None, f"no {lang} example"
        (tmp_path / f"persons.{lang}").write_text(block.group(1), encoding="utf-8")
        found[lang] = read_person_file(tmp_path / f"persons.{lang}")
    upserts, deletes = found["csv"]
    assert [u["id"] for u in upserts] == ["R001", "R002", "V001", "S001"] and deletes == ["R009"]
    v001 = upserts[2]
    assert v001["allowed_gates"] == ["gate-north"] and v001["directions"] == ["in"] and v001["max_uses"] == 3
    assert v001["schedule"] == {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    assert v001["valid_from"] == "2026-12-01T00:00:00.000000Z" and "photo_jpeg" in v001
    every_night = [["22:00", "06:00"]]
    assert upserts[3]["schedule"] == {d: every_night for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    upserts, deletes = found["json"]
    assert [u["id"] for u in upserts] == ["R001", "V001", "S001"] and deletes == ["R009"]
    assert upserts[1]["templates"]["model_id"] == "sface_2021dec" and upserts[2]["status"] == "suspended"


def test_schedule_cells() -> None:
    from edge.admin.schedule_text import parse_schedule_text

    assert parse_schedule_text("fri-mon 22:00-06:00") == {d: [["22:00", "06:00"]] for d in ("mon", "fri", "sat", "sun")}
    assert parse_schedule_text("MON,wed-thu 7:30-12:00 13:00-24:00; mon 20:00-21:00;") == {
        "mon": [["07:30", "12:00"], ["13:00", "24:00"], ["20:00", "21:00"]],
        "wed": [["07:30", "12:00"], ["13:00", "24:00"]], "thu": [["07:30", "12:00"], ["13:00", "24:00"]]}
    for bad, says in (("mon-fri", "names no time window"), ("; ;", "an empty schedule"),
                      ("mon 07:00", "is not a time window"), ("weekdays 07:00-22:00", "is not a day")):
        with pytest.raises(ValueError, match=says):
            parse_schedule_text(bad)
