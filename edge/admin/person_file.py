"""Person files: the persons of a whitelist push, from CSV or JSON, checked at the admin's desk with the
same rules as the gate (the protocol's entry model, `PersonEntry`, and the gate's own record,
`PersonRecord`), so a bad entry is found before it is signed and sent.

Every person field the gate takes (`PERSON_FIELDS`: the fields of `PersonEntry` but its biometrics)
goes through; the biometrics come from `photo` (a face photo, path relative to the file) or
`embeddings` (lists of floats, with `model_id`), or in JSON also as the protocol's `templates` and
`photo_jpeg`. A delta may name persons to delete: a JSON file's `deletes`, a CSV row whose `action` is
`delete`. The format is documented in docs/person-files.md.

Anything wrong raises `PersonFileError`, one line naming the file, the row (CSV: the spreadsheet row,
the header being row 1; JSON: the person's place in the list, from 1) and the fix.
"""

from __future__ import annotations

import base64
import csv
import difflib
import io
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.admin.schedule_text import parse_schedule_text
from edge.protocol.messages import PersonEntry
from edge.records import PersonRecord, WeeklySchedule, ts_text

_BIOMETRICS = ("templates", "photo_jpeg")  # the protocol's names; made from the input columns below
PERSON_FIELDS: tuple[str, ...] = tuple(f for f in PersonEntry.model_fields if f not in _BIOMETRICS)
INPUT_FIELDS = ("photo", "embeddings", "model_id")
CSV_COLUMNS: tuple[str, ...] = (*PERSON_FIELDS, *INPUT_FIELDS, "action")
JSON_FIELDS: tuple[str, ...] = (*PERSON_FIELDS, *INPUT_FIELDS, *_BIOMETRICS)
_LIST_FIELDS = ("allowed_gates", "directions")
_TIME_FIELDS = ("valid_from", "valid_until")
_PERSON_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


class PersonFileError(ValueError):
    """A person file that cannot be pushed; the message is one line: file, row, what is wrong, the fix."""


def _guess(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(choices)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------------------ one person


def _jpeg_b64(path: Path) -> str:
    import cv2  # here: a file with embeddings only needs no OpenCV
    import numpy as np

    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ValueError(f"photo {str(path)!r} not found (a photo path is relative to the person file)") from exc
    except OSError as exc:
        raise ValueError(f"photo {str(path)!r} cannot be read ({exc.strerror or exc})") from exc
    if data[:3] != b"\xff\xd8\xff":  # not a JPEG: re-encode (PNG and friends)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise ValueError(f"photo {str(path)!r} is not an image OpenCV can read (use JPEG or PNG)")
        data = bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1])
    return base64.b64encode(data).decode("ascii")


def _templates(vecs: Any, model: Any) -> dict[str, Any]:
    import numpy as np

    if not model:
        raise ValueError("embeddings need a model_id (a model_id field, or --model-id)")
    if not isinstance(vecs, list) or not vecs or not all(isinstance(v, list) and v for v in vecs):
        raise ValueError("embeddings must be a list of lists of numbers, e.g. [[0.1, -0.2, ...]]")
    try:
        arrays = [np.asarray(v, dtype="<f4") for v in vecs]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"embeddings must hold numbers only ({exc})") from exc
    if not all(a.ndim == 1 and np.isfinite(a).all() for a in arrays):
        raise ValueError("embeddings must be flat lists of finite numbers")
    return {"model_id": str(model), "embeddings": [base64.b64encode(a.tobytes()).decode("ascii") for a in arrays]}


def _time(value: Any, name: str) -> str:
    """An RFC 3339 time with its zone, normalised to UTC `...Z` (what the gate stores)."""
    try:
        dt = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} {value!r} is not a date and time with its zone; write e.g. "
                         "2026-12-31T23:59:00+08:00 or 2026-12-31T15:59:00Z")
    return ts_text(dt)


def _check_as_the_gate_does(out: dict[str, Any]) -> None:
    """The protocol's model, then the gate's own record (zones, schedule times, date order)."""
    try:
        e = PersonEntry.model_validate(out)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{where}: {msg}{more}" if where else f"{msg}{more}") from exc
    schedule = None if e.schedule is None else WeeklySchedule.from_json({str(d): w for d, w in e.schedule.items()})
    PersonRecord(id=e.id, name=e.name, kind=e.kind, status=e.status, valid_from=e.valid_from,
                 valid_until=e.valid_until, max_uses=e.max_uses, allowed_gates=tuple(e.allowed_gates),
                 directions=tuple(e.directions), unit=e.unit, care_watch_hours=e.care_watch_hours, card=e.card,
                 schedule=schedule)


def _entry(raw: dict[str, Any], base: Path, default_model: str | None) -> dict[str, Any]:
    """One person in the protocol's form, from the file's fields (ValueError with the fix)."""
    out: dict[str, Any] = {k: raw[k] for k in (*PERSON_FIELDS, *_BIOMETRICS) if raw.get(k) is not None}
    for name in _TIME_FIELDS:
        if name in out:
            out[name] = _time(out[name], name)
    if raw.get("photo") is not None:
        if not isinstance(raw["photo"], str) or not raw["photo"]:
            raise ValueError("photo must be the path of a face photo")
        if "photo_jpeg" in out:
            raise ValueError("give photo or photo_jpeg, not both")
        out["photo_jpeg"] = _jpeg_b64((base / raw["photo"]).resolve())
    if raw.get("embeddings") is not None:
        if "templates" in out:
            raise ValueError("give embeddings or templates, not both")
        out["templates"] = _templates(raw["embeddings"], raw.get("model_id") or default_model)
    _check_as_the_gate_does(out)
    return out


# ------------------------------------------------------------------------------------------- CSV cells


def _csv_value(name: str, text: str) -> Any:
    """A CSV cell (not empty) as the field's value."""
    if name in ("max_uses", "card"):
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{name} {text!r} is not a whole number")
        return int(text)
    if name == "care_watch_hours":
        try:
            hours = float(text)
        except ValueError:
            hours = math.nan
        if not math.isfinite(hours):
            raise ValueError(f"care_watch_hours {text!r} is not a number of hours (e.g. 12 or 0.5)")
        return hours
    if name in _LIST_FIELDS:
        return [item for item in re.split(r"[;,\s]+", text) if item]
    if name == "schedule":
        if text.startswith("{"):
            return json.loads(text)
        return parse_schedule_text(text)
    if name == "embeddings":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"embeddings is not a JSON list of lists of numbers ({exc})") from exc
    return text


def _read_csv(path: Path, text: str, default_model: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise PersonFileError(f"{path}: empty; the first row names the columns, e.g. id,name,unit,photo") from None
    except csv.Error as exc:
        raise PersonFileError(f"{path} row 1: not CSV ({exc})") from exc
    for i, name in enumerate(header, 1):
        if not name:
            raise PersonFileError(f"{path} row 1: column {i} has no name; name it or delete the column")
        if name not in CSV_COLUMNS:
            raise PersonFileError(f"{path} row 1: unknown column {name!r}; {_guess(name, CSV_COLUMNS)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise PersonFileError(f"{path} row 1: column {dupes[0]!r} named twice")
    if "id" not in header:
        raise PersonFileError(f"{path} row 1: missing column 'id' (every row needs the person's id)")
    upserts: list[tuple[str, dict[str, Any]]] = []
    deletes: list[tuple[str, str]] = []
    number = 1
    while True:
        number += 1
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise PersonFileError(f"{path} row {number}: not CSV ({exc})") from exc
        if not any(c.strip() for c in cells):
            continue  # a blank row
        row = {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()}
        pid = row.get("id", "")
        where = f"{path} row {number}" + (f" (id {pid})" if pid else "")
        if any(c.strip() for c in cells[len(header):]):
            raise PersonFileError(f"{where}: {len(cells)} cells but the header names {len(header)} columns; "
                                  "quote cells that hold a comma")
        action = row.pop("action", "upsert").lower()
        if action not in ("upsert", "delete"):
            raise PersonFileError(f"{where}: action {action!r} is neither upsert nor delete (empty: upsert)")
        if action == "delete":
            if not _PERSON_ID.match(pid):
                raise PersonFileError(f"{where}: a delete needs the person's id")
            deletes.append((where, pid))
            continue
        if "name" not in header:
            raise PersonFileError(f"{path} row 1: missing column 'name' (every person to add or change needs one)")
        try:
            values = {k: _csv_value(k, v) for k, v in row.items()}
            upserts.append((where, _entry(values, path.parent, default_model)))
        except ValueError as exc:
            raise PersonFileError(f"{where}: {_one_line(str(exc))}") from exc
    return _unique(path, upserts, deletes)


# ------------------------------------------------------------------------------------------------ JSON


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _read_json(path: Path, text: str, default_model: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PersonFileError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from exc
    except (ValueError, RecursionError) as exc:
        raise PersonFileError(f"{path}: not valid JSON ({_one_line(str(exc)) or 'nested too deeply'})") from exc
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"persons", "deletes"})
        if unknown:
            raise PersonFileError(f"{path}: unknown key {unknown[0]!r} at the top; "
                                  f"{_guess(unknown[0], ('persons', 'deletes'))}")
        persons, delete_ids = data.get("persons", []), data.get("deletes", [])
    elif isinstance(data, list):
        persons, delete_ids = data, []
    else:
        raise PersonFileError(f"{path}: a JSON list of persons or {{\"persons\": [...], \"deletes\": [...]}}")
    if not isinstance(persons, list) or not isinstance(delete_ids, list):
        raise PersonFileError(f"{path}: persons and deletes must be JSON lists")
    upserts: list[tuple[str, dict[str, Any]]] = []
    for i, person in enumerate(persons, 1):
        pid = person.get("id") if isinstance(person, dict) else None
        where = f"{path} person {i}" + (f" (id {pid})" if isinstance(pid, str) and pid else "")
        if not isinstance(person, dict):
            raise PersonFileError(f"{where}: a person is a JSON object {{\"id\": ..., \"name\": ...}}")
        for key in person:
            if key not in JSON_FIELDS:
                raise PersonFileError(f"{where}: unknown field {key!r}; {_guess(key, JSON_FIELDS)}")
        try:
            upserts.append((where, _entry(person, path.parent, default_model)))
        except ValueError as exc:
            raise PersonFileError(f"{where}: {_one_line(str(exc))}") from exc
    deletes = []
    for i, pid in enumerate(delete_ids, 1):
        if not isinstance(pid, str) or not _PERSON_ID.match(pid):
            raise PersonFileError(f"{path} deletes item {i}: {pid!r} is not a person id")
        deletes.append((f"{path} deletes item {i} (id {pid})", pid))
    return _unique(path, upserts, deletes)


# ---------------------------------------------------------------------------------------------- a file


def _unique(path: Path, upserts: list[tuple[str, dict[str, Any]]],
            deletes: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    seen: dict[str, str] = {}
    for where, pid in [(w, e["id"]) for w, e in upserts] + deletes:
        if pid in seen:
            raise PersonFileError(f"{where}: id {pid} appears again (first at {seen[pid].removeprefix(f'{path} ')}); "
                                  "one row per person")
        seen[pid] = where
    return [e for _, e in upserts], [d for _, d in deletes]


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PersonFileError(f"{path}: cannot read it ({exc.strerror or exc}); check the path and "
                              "its permissions") from exc
    try:
        return data.decode("utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a byte order mark
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PersonFileError(f"{path} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file "
                              "as UTF-8 (in a spreadsheet: CSV UTF-8)") from exc


def read_person_file(path: Path, default_model: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(upserts in the protocol's form, ids to delete) from a `.csv` file or a JSON file (any other name);
    PersonFileError (one line: file, row, fix) for anything a gate would refuse or the file cannot give."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path, text, default_model)
    return _read_json(path, text, default_model)
