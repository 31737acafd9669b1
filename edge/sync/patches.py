"""Whitelist patches: some fields of a person the gate already has (a status-only change, a rename, a
new validity) without biometrics. The record is rebuilt from the gate's copy with the patched fields;
templates, photos and the use count stay."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edge.protocol.messages import PersonPatch
from edge.store import PersonRecord, Store, WeeklySchedule

if TYPE_CHECKING:
    from edge.sync.whitelist import _Batch, _Prepared


def patch_records(store: Store, patches: Sequence[PersonPatch], now: datetime, batch: _Batch) -> list[_Prepared]:
    """The prepared records of `patches`; an unknown person or an invalid result is a per-entry error
    in `batch` (the rest of the delta still applies). Counts the patches in `batch.patched`."""
    from edge.sync.whitelist import _Prepared

    out: list[_Prepared] = []
    for patch in patches:
        old = store.get_person(patch.id)
        if old is None:
            batch.failed.append(patch.id)
            batch.errors.append({"id": patch.id, "code": "unknown_person", "applied": False,
                                 "message": "patch of a person this gate does not have; send an upsert"})
            continue
        try:
            record = patched(old, patch.changed(), now)
        except ValueError as exc:
            batch.failed.append(patch.id)
            batch.errors.append({"id": patch.id, "code": "invalid_entry", "message": str(exc), "applied": False})
            continue
        out.append(_Prepared(record, None, None))
    batch.patched += len(out)
    return out


def patched(old: PersonRecord, changes: dict[str, Any], now: datetime) -> PersonRecord:
    """`old` with `changes` (PersonPatch.changed()) applied; ValueError when the result is invalid."""
    fields = dict(changes)
    for name in ("allowed_gates", "directions"):
        if name in fields:
            fields[name] = tuple(fields[name])
    if fields.get("schedule") is not None:
        fields["schedule"] = WeeklySchedule.from_json({str(d): w for d, w in fields["schedule"].items()})
    return dataclasses.replace(old, **fields, updated_at=now)
