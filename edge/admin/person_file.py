"""Person files: the persons of a whitelist push, from CSV or JSON, checked against the protocol's
entry model at the admin's desk (not only at the gate).

One person per row/object: id, name, kind, status, unit, valid_from, valid_until, max_uses,
care_watch_hours, and either `photo` (path of a face photo, relative to the file) or `embeddings`
(lists of floats, with `model_id`). A delta file may also name `deletes` (JSON) or rows whose
`action` is `delete` (CSV).
"""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.protocol.messages import PersonEntry

_FIELDS = ("id", "name", "kind", "status", "unit", "valid_from", "valid_until", "max_uses", "care_watch_hours")


def _jpeg_b64(path: Path) -> str:
    data = path.read_bytes()
    if data[:3] != b"\xff\xd8\xff":  # not a JPEG: re-encode (PNG and friends)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path} is not a readable image")
        data = bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1])
    return base64.b64encode(data).decode("ascii")


def _entry(row: dict[str, Any], base: Path, default_model: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {k: row[k] for k in _FIELDS if row.get(k) not in (None, "")}
    for k in ("max_uses",):
        if k in out:
            out[k] = int(out[k])
    if "care_watch_hours" in out:
        out["care_watch_hours"] = float(out["care_watch_hours"])
    if row.get("photo"):
        out["photo_jpeg"] = _jpeg_b64((base / str(row["photo"])).resolve())
    elif row.get("embeddings"):
        vecs = row["embeddings"]
        if isinstance(vecs, str):
            vecs = json.loads(vecs)
        model = row.get("model_id") or default_model
        if not model:
            raise ValueError(f"person {row.get('id')}: embeddings need a model_id")
        out["templates"] = {"model_id": model, "embeddings": [
            base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii") for v in vecs]}
    PersonEntry.model_validate(out)  # fail here, at the admin's desk, not at the gate
    return out


def read_person_file(path: Path, default_model: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(upserts, deletes) from a CSV or JSON file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        deletes = [r["id"] for r in rows if (r.get("action") or "").strip().lower() == "delete"]
        upserts = [_entry(r, path.parent, default_model) for r in rows
                   if (r.get("action") or "").strip().lower() != "delete"]
        return upserts, deletes
    data = json.loads(path.read_text(encoding="utf-8"))
    persons = data.get("persons", []) if isinstance(data, dict) else data
    deletes = list(data.get("deletes", [])) if isinstance(data, dict) else []
    return [_entry(p, path.parent, default_model) for p in persons], deletes
