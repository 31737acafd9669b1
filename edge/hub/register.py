"""The master register: persons (each kept as the whole protocol entry, templates included, photos never)
and the community's gates. Every change is one new version of the community's whitelist and one row
in `changes` (what the delta of that version carries), written in one transaction with the register
itself and an audit row, so the register and the deltas can never disagree."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from edge.hub.db import HubDatabase
from edge.protocol.messages import MemberGate, PersonEntry, PersonPatch
from edge.records import ts_text

JsonDict = dict[str, Any]


class RegisterError(ValueError):
    """A change the register refuses (unknown person, invalid entry); the message says which."""


@dataclass(frozen=True)
class Change:
    version: int
    body: JsonDict  # {"upserts", "patches", "deletes", "gates" (None: unchanged)}
    published_at: str | None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class Register:
    def __init__(self, db: HubDatabase, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------------------------------ reading

    @property
    def version(self) -> int:
        row = self.db.one("SELECT value FROM meta WHERE key = 'version'")
        return int(row[0]) if row else 0

    def person(self, person_id: str) -> JsonDict | None:
        row = self.db.one("SELECT entry FROM persons WHERE id = ?", (person_id,))
        return json.loads(row[0]) if row else None

    def persons(self, group: str | None = None) -> list[JsonDict]:
        """The register's entries (as the gates get them), or only the members of `group`."""
        if group is None:
            return [json.loads(r[0]) for r in self.db.rows("SELECT entry FROM persons ORDER BY id")]
        return [json.loads(r[0]) for r in self.db.rows(
            "SELECT p.entry FROM persons p JOIN person_groups g ON g.person_id = p.id WHERE g.group_name = ? "
            "ORDER BY p.id", (group,))]

    def groups(self, person_id: str | None = None) -> list[str]:
        """A person's groups (buildings, care lists...), or every group in use."""
        if person_id is None:
            return [r[0] for r in self.db.rows("SELECT DISTINCT group_name FROM person_groups ORDER BY group_name")]
        return [r[0] for r in self.db.rows("SELECT group_name FROM person_groups WHERE person_id = ? "
                                           "ORDER BY group_name", (person_id,))]

    def set_groups(self, person_id: str, groups: Sequence[str], actor: str) -> None:
        """Replace a person's groups (the hub's own grouping: no delta, an audit row)."""
        clean = sorted({g.strip() for g in groups if g.strip()})
        if any(len(g) > 64 for g in clean):
            raise RegisterError("a group name is at most 64 characters")
        with self.db.tx():
            if self.db.one("SELECT id FROM persons WHERE id = ?", (person_id,)) is None:
                raise RegisterError(f"no person {person_id} in the register")
            self.db.execute("DELETE FROM person_groups WHERE person_id = ?", (person_id,))
            for g in clean:
                self.db.execute("INSERT INTO person_groups (person_id, group_name) VALUES (?, ?)", (person_id, g))
            audit_row(self.db, actor, "person_groups", {"id": person_id, "groups": clean})

    def gates(self) -> list[JsonDict]:
        return [{"gate_id": g, "public_key": k} for g, k in self.db.rows(
            "SELECT gate_id, public_key FROM gates ORDER BY gate_id")]

    def changes_after(self, version: int) -> list[Change]:
        return [Change(int(v), json.loads(b), p) for v, b, p in self.db.rows(
            "SELECT version, body, published_at FROM changes WHERE version > ? ORDER BY version", (version,))]

    def unpublished(self) -> list[Change]:
        return [Change(int(v), json.loads(b), p) for v, b, p in self.db.rows(
            "SELECT version, body, published_at FROM changes WHERE published_at IS NULL ORDER BY version")]

    def mark_published(self, version: int) -> None:
        with self.db.tx():
            self.db.execute("UPDATE changes SET published_at = ? WHERE version = ?", (ts_text(self.clock()), version))

    # ------------------------------------------------------------------------------------ changing

    def upsert(self, entries: Sequence[JsonDict], actor: str) -> int:
        """Add or replace persons (whole records; templates omitted: the hub keeps the ones it has).
        Photos must have been turned into templates already (the hub keeps no photos)."""
        checked: list[JsonDict] = []
        for raw in entries:
            if raw.get("photo_jpeg"):
                raise RegisterError(f"person {raw.get('id')}: make templates from the photo first (the hub keeps "
                                    "no photos)")
            try:
                model = PersonEntry.model_validate(raw)
            except ValidationError as exc:
                raise RegisterError(f"person {raw.get('id')}: {_first_error(exc)}") from exc
            checked.append(model.model_dump(mode="json", exclude_none=True))
        if not checked:
            raise RegisterError("nothing to change")
        with self.db.tx():
            version = self._next_version()
            for entry in checked:
                old = self.db.one("SELECT entry FROM persons WHERE id = ?", (entry["id"],))
                if "templates" not in entry and old is not None and "templates" in json.loads(old[0]):
                    entry = {**entry, "templates": json.loads(old[0])["templates"]}
                self._put(entry, version)
            self._change(version, {"upserts": checked}, actor, "person_upsert",
                         {"ids": [e["id"] for e in checked]})
        return version

    def patch(self, person_id: str, fields: JsonDict, actor: str) -> int:
        """Change some fields of a person (status, name, validity...), without biometrics."""
        try:
            patch = PersonPatch.model_validate({"id": person_id, **fields})
        except ValidationError as exc:
            raise RegisterError(f"person {person_id}: {_first_error(exc)}") from exc
        with self.db.tx():
            old = self.db.one("SELECT entry FROM persons WHERE id = ?", (person_id,))
            if old is None:
                raise RegisterError(f"no person {person_id} in the register")
            changes = json.loads(json.dumps(patch.changed(), default=str))
            entry = {k: v for k, v in {**json.loads(old[0]), **changes}.items() if v is not None}
            try:
                PersonEntry.model_validate(entry)
            except ValidationError as exc:
                raise RegisterError(f"person {person_id}: {_first_error(exc)}") from exc
            version = self._next_version()
            self._put(entry, version)
            self._change(version, {"patches": [{"id": person_id, **changes}]}, actor, "person_patch",
                         {"id": person_id, "fields": sorted(changes)})
        return version

    def delete(self, person_ids: Sequence[str], actor: str) -> int:
        """Delete persons, their templates with them (the gates delete theirs when the delta comes)."""
        ids = list(dict.fromkeys(person_ids))
        with self.db.tx():
            missing = [i for i in ids if self.db.one("SELECT id FROM persons WHERE id = ?", (i,)) is None]
            if missing:
                raise RegisterError(f"no person {missing[0]} in the register")
            version = self._next_version()
            for pid in ids:
                self.db.execute("DELETE FROM persons WHERE id = ?", (pid,))
                self.db.execute("DELETE FROM person_groups WHERE person_id = ?", (pid,))
            self._change(version, {"deletes": ids}, actor, "person_delete", {"ids": ids})
        return version

    def set_gate(self, gate_id: str, public_key: str, actor: str) -> int:
        """Add a gate (or give it a new key); the member list goes to every gate with the next delta."""
        try:
            MemberGate.model_validate({"gate_id": gate_id, "public_key": public_key})
        except ValidationError as exc:
            raise RegisterError(f"gate {gate_id}: {_first_error(exc)}") from exc
        with self.db.tx():
            self.db.execute("DELETE FROM gates WHERE gate_id = ?", (gate_id,))
            self.db.execute("INSERT INTO gates (gate_id, public_key, added_at) VALUES (?, ?, ?)",
                            (gate_id, public_key, ts_text(self.clock())))
            version = self._next_version()
            self._change(version, {"gates": self._gates_in_tx()}, actor, "gate_set", {"gate_id": gate_id})
        return version

    def remove_gate(self, gate_id: str, actor: str) -> int:
        with self.db.tx():
            if self.db.execute("DELETE FROM gates WHERE gate_id = ?", (gate_id,)) == 0:
                raise RegisterError(f"no gate {gate_id} in the register")
            version = self._next_version()
            self._change(version, {"gates": self._gates_in_tx()}, actor, "gate_remove", {"gate_id": gate_id})
        return version

    # ------------------------------------------------------------------------------------ inside a tx

    def _gates_in_tx(self) -> list[JsonDict]:
        return self.gates()

    def _next_version(self) -> int:
        row = self.db.one("SELECT value FROM meta WHERE key = 'version'")
        version = (int(row[0]) if row else 0) + 1
        if row is None:
            self.db.execute("INSERT INTO meta (key, value) VALUES ('version', ?)", (str(version),))
        else:
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(version),))
        return version

    def _put(self, entry: JsonDict, version: int) -> None:
        self.db.execute("DELETE FROM persons WHERE id = ?", (entry["id"],))
        self.db.execute("INSERT INTO persons (id, entry, status, version, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (entry["id"], json.dumps(entry, ensure_ascii=False), entry.get("status", "active"),
                         version, ts_text(self.clock())))

    def _change(self, version: int, body: JsonDict, actor: str, action: str, details: JsonDict) -> None:
        body = {"upserts": [], "patches": [], "deletes": [], "gates": None, **body}
        now = ts_text(self.clock())
        self.db.execute("INSERT INTO changes (version, body, created_at) VALUES (?, ?, ?)",
                        (version, json.dumps(body, ensure_ascii=False), now))
        audit_row(self.db, actor, action, {**details, "version": version}, now)


def audit_row(db: HubDatabase, actor: str, action: str, details: JsonDict, ts: str | None = None) -> None:
    """One audit row (inside the caller's transaction), numbered after the last."""
    row = db.one("SELECT COALESCE(MAX(seq), 0) FROM audit")
    db.execute("INSERT INTO audit (seq, ts, actor, action, details) VALUES (?, ?, ?, ?, ?)",
               ((int(row[0]) if row else 0) + 1, ts or ts_text(datetime.now(UTC)), actor, action,
                json.dumps(details, ensure_ascii=False)))
