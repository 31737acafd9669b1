"""WhitelistApplier: turns verified whitelist pushes into store changes, all-or-nothing, and answers
each with an ack (applied, with counts and per-entry errors) or a nack (rejected, store untouched,
plus a `whitelist_rejected` alarm).

Rules:
- version <= the applied `whitelist_version` is refused (`old_version`); a delta whose base_version
  is not the applied version is refused (`version_gap`) and the ack asks for a snapshot.
- Snapshot chunks of one version are collected (photos embedded on arrival) and applied together
  once every chunk is in; persons not in the snapshot are deleted with their templates.
- Templates are used when their model_id is the gate's; otherwise the entry's photo is used. An
  active person left with neither (foreign templates only) refuses the whole push (`unknown_model`):
  applying it would silently lock that resident out. Inactive persons get a per-entry error.
- An entry whose biometrics fail (undecodable photo, no face, low quality, bad vectors, a foreign
  model for an inactive person) still has its record applied (a suspension or a shorter validity must
  never be lost) while the person's templates stay as they were; the ack lists it in `errors` with
  `applied: true`. An entry whose record itself is invalid is skipped (`applied: false`; in a snapshot
  the person's previous record and templates stay).
- Photos are discarded after embedding unless keep_photos (then `photo_dir/<id>.jpg`).
- A push for another gate (`gate` set to another id) is ignored; one for another community is refused.
- Catching up: the admin keeps the community's latest delta retained (and the `whitelist/current`
  pointer). A retained delta the gate has already (version <= applied) or that has expired is
  ignored quietly, it is no replay; one that builds on the applied version is applied like any other,
  so a gate that was offline for one delta catches up by itself; one that does not (it missed more) is
  refused as a `version_gap` that asks for a snapshot, as is a pointer beyond the applied version.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.filemodes import private_dir, write_private
from edge.protocol.messages import (
    Delta,
    PersonEntry,
    Push,
    RejectedPush,
    SnapshotChunk,
    parse_push,
)
from edge.protocol.payloads import WhitelistCurrent
from edge.protocol.signing import SignatureError, verify
from edge.store import PersonRecord, Store, StoreError, WeeklySchedule
from edge.sync.answers import Answers, not_found_notes, peek
from edge.sync.members import META_KEY as MEMBERS_KEY
from edge.sync.members import MemberGates
from edge.sync.patches import patch_records
from edge.sync.snapshot_ask import SnapshotAsk
from edge.vision.face import Face
from edge.vision.image import Image, ImageError, decode_image

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
VERSION_KEY = "whitelist_version"


class Analyzer(Protocol):
    """The part of FaceEngine the applier uses (thread-safe: ONNX Runtime sessions)."""

    def analyze(self, bgr_image: Image) -> list[Face]: ...


class _Reject(Exception):
    def __init__(self, code: str, message: str, need_snapshot: bool = False) -> None:
        super().__init__(message)
        self.code, self.need_snapshot = code, need_snapshot


@dataclass
class _Prepared:
    record: PersonRecord
    templates: np.ndarray | None  # None: leave the person's templates as they are
    photo: bytes | None  # kept only with keep_photos


@dataclass
class _Batch:
    prepared: list[_Prepared] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # ids whose entries were not applied
    errors: list[JsonDict] = field(default_factory=list)
    patched: int = 0  # of `prepared`, this many (the last ones) are patches
    absent: list[str] = field(default_factory=list)  # deletes of persons the gate did not have


@dataclass
class _Collecting:
    started: float  # monotonic
    version: int
    chunks: int
    total: int
    gate: str | None
    expires_at: datetime
    key_id: str
    gates: list[Any]
    parts: dict[int, _Batch] = field(default_factory=dict)
    entries: int = 0


class WhitelistApplier:
    """`handle(raw, topic)` for snapshot/delta pushes, `handle_current(raw)` for the retained pointer;
    both return the ack document to publish (None: nothing to say yet / nothing to do)."""

    def __init__(self, store: Store, engine: Analyzer | None, model_id: str,
                 trusted_keys: Sequence[Ed25519PublicKey], *, community: str, gate_id: str,
                 keep_photos: bool = False, photo_dir: Path | None = None, max_snapshot_persons: int = 100_000,
                 on_applied: Callable[[int], None] | None = None, members: MemberGates | None = None,
                 snapshot_chunk_timeout_s: float = 60.0, ask: SnapshotAsk | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if keep_photos and photo_dir is None:
            raise ValueError("keep_photos needs a photo_dir")
        self.store, self.engine, self.model_id = store, engine, model_id
        self.trusted = list(trusted_keys)
        self.community, self.gate_id = community, gate_id
        self.keep_photos, self.photo_dir = keep_photos, photo_dir
        self.max_snapshot_persons = max_snapshot_persons
        self.on_applied = on_applied
        self.clock = clock
        self.monotonic = monotonic
        self.members = members if members is not None else MemberGates(MemberGates.decode(store.get_meta(MEMBERS_KEY)))
        self.chunk_timeout_s = snapshot_chunk_timeout_s
        self.ask = ask if ask is not None else SnapshotAsk()
        self.answers = Answers(store, gate_id=gate_id, community=community, version=lambda: self.version,
                               ask=self.ask, clock=clock, monotonic=monotonic)
        self._community_version = 0  # the newest version the whitelist/current pointer named
        self._collecting: _Collecting | None = None

    @property
    def version(self) -> int:
        text = self.store.get_meta(VERSION_KEY)
        return int(text) if text and text.isdigit() else 0

    # ------------------------------------------------------------------------------------- entry points

    def handle(self, raw: bytes, topic: str = "", retained: bool = False) -> JsonDict | None:
        """`retained`: the broker kept this message (the community's latest delta) and sent it on subscribe."""
        kind: str = "unknown"
        version: int | None = None
        digest = hashlib.sha256(raw).hexdigest()
        try:
            try:
                push = parse_push(raw, self.trusted, now=self.clock())
            except RejectedPush as exc:
                if retained and exc.code == "expired":
                    log.info("retained whitelist push on %s has expired; ignored", topic or "-")
                    return None
                kind, version = peek(raw, exc.code)
                raise
            kind = "snapshot" if isinstance(push, SnapshotChunk) else "delta"
            version = push.version
            if push.gate is not None and push.gate != self.gate_id:
                log.info("whitelist %s version %s is for gate %s, not this one; ignored", kind, version, push.gate)
                return None
            self._check_target(push)
            current = self.version
            if retained and push.version <= current:
                log.info("retained whitelist %s version %s is applied already (version %s)", kind, version, current)
                return None
            if push.version <= current:
                raise _Reject("old_version", f"version {push.version} is not newer than the applied {current}")
            if isinstance(push, Delta):
                if push.base_version != current:
                    raise _Reject("version_gap", f"delta {push.base_version}->{push.version} does not apply on "
                                  f"version {current}; send a snapshot", need_snapshot=True)
                batch = self._delta_batch(push)
                counts = self._commit(push, batch, deletes=push.deletes, replace=False)
            else:
                done = self._collect(push)
                if done is None:
                    return None
                batch = done
                counts = self._commit(push, batch, deletes=[], replace=True)
        except RejectedPush as exc:
            return self._reject(kind, version, digest, exc.code, str(exc), topic)
        except _Reject as exc:
            return self._reject(kind, version, digest, exc.code, str(exc), topic, exc.need_snapshot)
        except StoreError as exc:
            return self._reject(kind, version, digest, "store_error", f"the store refused the change: {exc}", topic)
        log.info("whitelist %s version %s applied: %s, %s entry errors", kind, version, counts, len(batch.errors))
        if kind == "snapshot" or (version or 0) >= self._community_version:
            self.ask.satisfied()
        if self.on_applied is not None and version is not None:
            try:
                self.on_applied(version)
            except Exception:  # the gallery reload failing must not undo the ack
                log.exception("on_applied(%s) failed", version)
        absent = f"; {len(batch.absent)} deleted person(s) were not here (notes)" if batch.absent else ""
        return self._ack(kind, version, digest, "applied", "ok", f"version {version} applied{absent}",
                         counts=counts, errors=batch.errors, notes=not_found_notes(version, batch.absent))

    def authentic(self, raw: bytes) -> bool:
        """Is this a push signed by a trusted key? (The intake's check when its queue is full.)"""
        try:
            data = json.loads(raw)
            return isinstance(data, dict) and bool(verify(data, self.trusted))
        except (ValueError, RecursionError, SignatureError):
            return False

    def tick(self) -> list[JsonDict]:
        """Timers (the intake thread, about once a second): a snapshot whose chunks stopped coming is
        dropped and nacked `incomplete`; a gate that needs a snapshot asks again (SnapshotAsk)."""
        out: list[JsonDict] = []
        col = self._collecting
        if col is not None and self.monotonic() - col.started > self.chunk_timeout_s:
            self._collecting = None
            nack = self._reject("snapshot", col.version, None, "incomplete",
                                f"snapshot {col.version}: {len(col.parts)} of {col.chunks} chunks within "
                                f"{self.chunk_timeout_s:g} s; dropped", "", need_snapshot=True)
            if nack is not None:
                out.append(nack)
        elif col is not None:
            self.ask.postpone()
        if self.ask.due():
            log.warning("whitelist version %s: asking again for a snapshot (request %s)", self.version,
                        self.ask.asked)
            out.append(self._ack("request", None, None, "outdated", "need_snapshot",
                                 f"gate has version {self.version} and needs a snapshot", need_snapshot=True))
        return out

    def handle_current(self, raw: bytes) -> JsonDict | None:
        """The admin's retained `whitelist/current` pointer: ask for a snapshot when this gate is behind."""
        try:
            current = WhitelistCurrent.model_validate_json(raw)
        except ValidationError as exc:
            return self._reject("current", None, hashlib.sha256(raw).hexdigest(), "invalid",
                                f"whitelist/current: {exc.errors()[0]['msg']}", "")
        mine = self.version
        self._community_version = max(self._community_version, current.version)
        if current.version <= mine:
            return None
        log.warning("whitelist version %s is behind the community's %s; asking for a snapshot", mine,
                    current.version)
        return self._ack("current", current.version, hashlib.sha256(raw).hexdigest(), "outdated", "behind",
                         f"gate has version {mine}, the community {current.version}", need_snapshot=True)

    # ------------------------------------------------------------------------------------------ checks

    def _check_target(self, push: Push) -> None:
        if push.community != self.community:
            raise _Reject("wrong_target", f"push for community {push.community!r}, this gate is in "
                          f"{self.community!r}")

    def _delta_batch(self, push: Delta) -> _Batch:
        ids = [e.id for e in push.upserts] + [p.id for p in push.patches]
        if len(set(ids)) != len(ids):
            raise _Reject("invalid", "a person is upserted or patched twice in one delta")
        both = set(ids) & set(push.deletes)
        if both:
            raise _Reject("invalid", f"persons both changed and deleted: {sorted(both)[:5]}")
        batch = self._prepare(push.upserts)
        batch.prepared += patch_records(self.store, push.patches, self.clock(), batch)
        return batch

    def _collect(self, chunk: SnapshotChunk) -> _Batch | None:
        """Add a snapshot chunk; the whole snapshot once all its chunks are in, else None."""
        if chunk.total_persons > self.max_snapshot_persons:
            raise _Reject("oversize", f"snapshot of {chunk.total_persons} persons exceeds the gate's limit "
                          f"of {self.max_snapshot_persons}")
        col = self._collecting
        if col is not None and chunk.version < col.version:
            raise _Reject("old_version", f"snapshot {chunk.version} is superseded by {col.version} (collecting)")
        if col is None or chunk.version > col.version:
            if col is not None:
                log.warning("snapshot %s dropped unfinished (%s of %s chunks): version %s arrived", col.version,
                            len(col.parts), col.chunks, chunk.version)
            col = self._collecting = _Collecting(self.monotonic(), chunk.version, chunk.chunks, chunk.total_persons,
                                                 chunk.gate, chunk.expires_at, chunk.signature.key_id, chunk.gates)
        if (chunk.chunks, chunk.total_persons, chunk.gate, chunk.gates) != (col.chunks, col.total, col.gate, col.gates):
            self._collecting = None
            raise _Reject("invalid", f"snapshot {chunk.version} chunk {chunk.chunk} disagrees with the "
                          "others on chunks/total_persons/gate/gates; snapshot dropped")
        try:
            batch = self._prepare(chunk.entries)
        except _Reject:
            self._collecting = None
            raise
        if chunk.chunk in col.parts:
            col.entries -= len(col.parts[chunk.chunk].prepared) + len(col.parts[chunk.chunk].failed)
        col.parts[chunk.chunk] = batch
        col.entries += len(chunk.entries)
        col.expires_at = min(col.expires_at, chunk.expires_at)
        if col.entries > col.total:
            self._collecting = None
            raise _Reject("invalid", f"snapshot {col.version} has more entries than its total_persons {col.total}")
        log.info("snapshot %s: chunk %s of %s in", col.version, len(col.parts), col.chunks)
        if len(col.parts) < col.chunks:
            return None
        self._collecting = None
        if col.entries != col.total:
            raise _Reject("invalid", f"snapshot {col.version} holds {col.entries} persons, its manifest says "
                          f"{col.total}")
        if col.expires_at <= self.clock():
            raise _Reject("expired", f"snapshot {col.version} expired while its chunks arrived")
        whole = _Batch()
        for i in range(col.chunks):
            part = col.parts[i]
            whole.prepared += part.prepared
            whole.failed += part.failed
            whole.errors += part.errors
        ids = [p.record.id for p in whole.prepared] + whole.failed
        if len(set(ids)) != len(ids):
            raise _Reject("invalid", f"snapshot {col.version} lists a person more than once")
        return whole

    # --------------------------------------------------------------------------------------- preparing

    def _prepare(self, entries: Sequence[PersonEntry]) -> _Batch:
        batch = _Batch()
        now = self.clock()
        for entry in entries:
            try:
                record = self._record(entry, now)
            except _EntryError as exc:
                batch.failed.append(entry.id)
                batch.errors.append({"id": entry.id, "code": exc.code, "message": str(exc), "applied": False})
                continue
            templates: np.ndarray | None = None
            photo: bytes | None = None
            try:
                templates, photo = self._biometrics(entry)
            except _EntryError as exc:
                batch.errors.append({"id": entry.id, "code": exc.code, "message": f"{exc}; record applied, "
                                     "templates unchanged", "applied": True})
            batch.prepared.append(_Prepared(record, templates, photo if self.keep_photos else None))
        return batch

    @staticmethod
    def _record(e: PersonEntry, now: datetime) -> PersonRecord:
        schedule = None if e.schedule is None else {str(day): windows for day, windows in e.schedule.items()}
        try:
            return PersonRecord(
                id=e.id, name=e.name, kind=e.kind, status=e.status, valid_from=e.valid_from,
                valid_until=e.valid_until, max_uses=e.max_uses, allowed_gates=tuple(e.allowed_gates),
                directions=tuple(e.directions), unit=e.unit, care_watch_hours=e.care_watch_hours, card=e.card,
                schedule=None if schedule is None else WeeklySchedule.from_json(schedule), updated_at=now)
        except ValueError as exc:
            raise _EntryError("invalid_entry", str(exc)) from exc

    def _biometrics(self, e: PersonEntry) -> tuple[np.ndarray | None, bytes | None]:
        """(templates, photo) of an entry; (None, None) when it carries none."""
        if e.templates is not None and e.templates.model_id == self.model_id:
            try:
                return e.templates.arrays(), None
            except ValueError as exc:
                raise _EntryError("bad_templates", str(exc)) from exc
        if e.photo_jpeg is not None:
            photo = self._photo_bytes(e)
            return self._embed(e.id, photo), photo
        if e.templates is not None:
            message = (f"templates of model {e.templates.model_id!r}, this gate uses {self.model_id!r}, and no "
                       "photo to make its own")
            if e.status == "active":
                raise _Reject("unknown_model", f"person {e.id}: {message}")
            raise _EntryError("unknown_model", message)
        return None, None

    @staticmethod
    def _photo_bytes(e: PersonEntry) -> bytes:
        try:
            return base64.b64decode(e.photo_jpeg or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _EntryError("bad_photo", f"photo is not base64: {exc}") from exc

    def _embed(self, person_id: str, photo: bytes) -> np.ndarray:
        if self.engine is None:
            raise _EntryError("no_engine", "this gate has no face engine to make templates from photos")
        try:
            image = decode_image(photo, f"photo of {person_id}")
        except ImageError as exc:
            raise _EntryError("bad_photo", str(exc)) from exc
        faces = self.engine.analyze(image)
        if not faces:
            raise _EntryError("no_face", "no face found in the photo")
        face = faces[0]  # largest first
        if face.quality is not None and not face.quality.ok:
            raise _EntryError("low_quality", f"face quality too low: {', '.join(face.quality.reasons)}")
        return np.asarray(face.embedding, dtype=np.float32)[None, :]

    # ---------------------------------------------------------------------------------------- applying

    def _commit(self, push: Push, batch: _Batch, *, deletes: Sequence[str], replace: bool) -> JsonDict:
        counts = {"upserted": 0, "patched": 0, "deleted": 0, "templates": 0}
        gates = push.gates

        def apply(store: Store) -> None:
            if replace:
                keep = {p.record.id for p in batch.prepared} | set(batch.failed)
                gone = [pid for pid in _all_person_ids(store) if pid not in keep]
            else:
                gone = list(dict.fromkeys(deletes))
            for pid in gone:
                if store.delete_person(pid):
                    counts["deleted"] += 1
                elif not replace:  # already absent: the delete holds, the ack notes it
                    batch.absent.append(pid)
            for p in list(batch.prepared):
                try:
                    counts["templates"] += store.apply_in_transaction(functools.partial(self._apply_one, p=p))
                    counts["upserted"] += 1
                except (ValueError, StoreError) as exc:  # only this entry's savepoint is rolled back
                    batch.prepared.remove(p)
                    batch.errors.append({"id": p.record.id, "code": "store_refused", "message": str(exc),
                                         "applied": False})
            store.set_meta(VERSION_KEY, str(push.version))
            if gates is not None:
                store.set_meta(MEMBERS_KEY, MemberGates.encode([(g.gate_id, g.public_key) for g in gates]))
            store.audit("whitelist", "whitelist_applied", {
                "kind": "snapshot" if replace else "delta", "version": push.version,
                "key_id": push.signature.key_id, "issued_at": push.issued_at.isoformat(), **counts,
                "errors": len(batch.errors)})

        self.store.apply_in_transaction(apply)
        counts["patched"] = min(batch.patched, counts["upserted"])
        counts["upserted"] -= counts["patched"]
        if gates is not None:
            self.members.replace([(g.gate_id, g.public_key) for g in gates])
        if counts["deleted"] or counts["templates"]:
            self.store.forget_deleted_pages()  # replaced or deleted templates leave no old page images
        self._photo_files(batch, gone_ids=set(deletes) if not replace else None)
        return counts

    def _apply_one(self, store: Store, *, p: _Prepared) -> int:
        old = store.get_person(p.record.id)
        record = dataclasses.replace(p.record, uses=old.uses) if old is not None else p.record
        store.upsert_person(record)
        if p.templates is None:
            return 0
        return store.replace_templates(p.record.id, p.templates, self.model_id)

    def _photo_files(self, batch: _Batch, gone_ids: set[str] | None) -> None:
        if self.photo_dir is None:
            return
        try:
            private_dir(self.photo_dir, "whitelist photo dir")  # residents' faces: 0700 / 0600
            for p in batch.prepared:
                if p.photo is not None:
                    write_private(self.photo_dir / f"{p.record.id}.jpg", p.photo)
            known = None if gone_ids is not None else set(_all_person_ids(self.store))
            for path in self.photo_dir.glob("*.jpg"):
                if (gone_ids is not None and path.stem in gone_ids) or (known is not None and path.stem not in known):
                    path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot update whitelist photos in %s: %s", self.photo_dir, exc)

    # ------------------------------------------------------------------------------------------ answers

    def _ack(self, *args: Any, **kw: Any) -> JsonDict:
        return self.answers.ack(*args, **kw)

    def _reject(self, *args: Any, **kw: Any) -> JsonDict | None:
        return self.answers.reject(*args, **kw)


class _EntryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _all_person_ids(store: Store, page: int = 10_000) -> list[str]:
    ids: list[str] = []
    while True:
        chunk = store.list_persons(limit=page, offset=len(ids))
        ids += [p.id for p in chunk]
        if len(chunk) < page:
            return ids
