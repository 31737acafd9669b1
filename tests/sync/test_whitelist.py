"""Whitelist pushes applied to a real SQLite store: versions, snapshots in chunks, deletes, photos
embedded by the real engine, every rejection leaving the store untouched with a nack and an alarm,
and a 10,000-person snapshot applied while another thread keeps loading the gallery."""

from __future__ import annotations

import base64
import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sync_helpers import COMMUNITY, GATE, MODEL, delta, dump_whitelist, embedding, entry, snapshot

from edge.protocol.limits import MAX_PAYLOAD_BYTES
from edge.protocol.payloads import WhitelistAck
from edge.protocol.signing import AdminKey
from edge.store import PersonRecord, Store
from edge.sync.whitelist import WhitelistApplier
from edge.vision import FaceEngine, Gallery
from tests.support.wire import signed


@pytest.fixture(scope="module")
def admin() -> AdminKey:
    return AdminKey.generate()


def applier(store: Store, admin: AdminKey, engine: FaceEngine | None = None, **kw: Any) -> WhitelistApplier:
    return WhitelistApplier(store, engine, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE, **kw)


def ok(ack: dict[str, Any] | None) -> dict[str, Any]:
    assert ack is not None
    WhitelistAck.model_validate(signed(ack))  # every ack matches its documented schema
    assert ack["status"] == "applied", ack
    return ack


def test_deltas_upsert_and_delete_with_templates(store: Store, admin: AdminKey) -> None:
    applied: list[int] = []
    wl = applier(store, admin, on_applied=applied.append)
    ack = ok(wl.handle(delta(admin, 1, [entry("R1", 1, n=2), entry("R2", 2), entry("R3", 3)], base=0)))
    assert ack["counts"] == {"upserted": 3, "patched": 0, "deleted": 0, "templates": 4} and ack["version"] == 1
    assert applied == [1] and wl.version == 1 and store.count_templates(MODEL) == 4
    ids, matrix = store.load_templates(MODEL)
    assert ids.count("R1") == 2 and np.allclose(matrix[ids.index("R2")], embedding(2 * 31))
    store.upsert_person(PersonRecord(**{**store.get_person("R2").to_dict(), "uses": 5}))  # type: ignore[union-attr]

    ack = ok(wl.handle(delta(admin, 2, [entry("R2", 20, name="Renamed")], deletes=["R1", "nobody"])))
    assert ack["counts"] == {"upserted": 1, "patched": 0, "deleted": 1, "templates": 1}
    assert store.get_person("R1") is None and "R1" not in store.load_templates(MODEL)[0]  # purged
    r2 = store.get_person("R2")
    assert r2 is not None and r2.name == "Renamed" and r2.uses == 5  # the use count survives an update
    ids, matrix = store.load_templates(MODEL)
    assert ids.count("R2") == 1 and np.allclose(matrix[ids.index("R2")], embedding(20 * 31))
    assert wl.handle(delta(admin, 3, [entry("R7", 7)], gate="gate-z")) is None  # another gate's push
    assert wl.version == 2 and store.get_person("R7") is None
    actions = [(a.action, a.details["version"]) for a in store.audit_entries()]
    assert actions == [("whitelist_applied", 2), ("whitelist_applied", 1)]


def test_snapshot_chunks_replace_the_whitelist(store: Store, admin: AdminKey) -> None:
    wl = applier(store, admin)
    ok(wl.handle(delta(admin, 1, [entry("OLD", 9), entry("K1", 1)], base=0)))
    chunks = snapshot(admin, 5, [entry(f"K{i}", i) for i in range(1, 8)], per_chunk=3)
    assert len(chunks) == 3
    assert wl.handle(chunks[2]) is None and wl.handle(chunks[0]) is None  # out of order, not yet complete
    assert wl.version == 1 and store.get_person("OLD") is not None  # nothing applied before the last chunk
    ack = ok(wl.handle(chunks[1]))
    assert ack["counts"] == {"upserted": 7, "patched": 0, "deleted": 1, "templates": 7} and wl.version == 5
    assert store.get_person("OLD") is None and store.count_persons() == 7 and store.count_templates() == 7
    # a delta now has to build on version 5
    gap = wl.handle(delta(admin, 7, [entry("K9", 9)], base=6))
    assert gap is not None and gap["code"] == "version_gap" and gap["need_snapshot"] is True


def _rejections(admin: AdminKey, other: AdminKey) -> dict[str, bytes]:
    now = datetime.now(UTC)
    good = json.loads(delta(admin, 3, [entry("N1", 1)]))
    tampered = {**good, "upserts": [entry("EVIL", 66)]}
    return {
        "bad_signature": delta(other, 3, [entry("N1", 1)]),
        "bad_signature:tampered": json.dumps(tampered).encode(),
        "old_version": delta(admin, 2, [entry("N1", 1)], base=1),
        "version_gap": delta(admin, 4, [entry("N1", 1)], base=3),
        "malformed_json": b'{"schema": "edge-gate/whitelist-delta/1", "version": 3,',
        "malformed_json:binary": b"\xff\xfe\x00garbage",
        "unknown_schema": json.dumps(admin.sign({**json.loads(delta(admin, 3, [])), "schema": "edge-gate/x/9"}
                                                )).encode(),
        "invalid": delta(admin, 3, [{"id": "bad id!", "name": "x", "photo_jpeg": "AAAA"}]),
        "oversize": delta(admin, 3, [entry("N1", 1)], note="x" * MAX_PAYLOAD_BYTES),
        # a signed, well-formed snapshot whose manifest is larger than the gate accepts (limit 5 here)
        "oversize:snapshot": snapshot(admin, 3, [entry(f"S{i}", i) for i in range(6)])[0],
        "unknown_model": delta(admin, 3, [entry("N1", 1), entry("N2", 2, model="arcface_r100")]),
        "expired": delta(admin, 3, [entry("N1", 1)], now=now - timedelta(days=2)),
        "wrong_target": delta(admin, 3, [entry("N1", 1)], community="other-estate"),
    }


@pytest.mark.parametrize("case", ["bad_signature", "bad_signature:tampered", "old_version", "version_gap",
                                  "malformed_json", "malformed_json:binary", "unknown_schema", "invalid",
                                  "oversize", "oversize:snapshot", "unknown_model", "expired", "wrong_target"])
def test_rejected_push_leaves_the_store_untouched(tmp_path: Path, store: Store, admin: AdminKey,
                                                  case: str) -> None:
    wl = applier(store, admin, max_snapshot_persons=5)
    ok(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0)))
    ok(wl.handle(delta(admin, 2, [entry("R2", 2)])))
    payloads = _rejections(admin, AdminKey.generate())
    raw = payloads[case]
    before = dump_whitelist(store.path)
    alarms_before = len(store.alarms(kind="whitelist_rejected"))
    ack = wl.handle(raw, topic="edge-gate/sunny-gardens/whitelist/delta")
    assert ack is not None
    WhitelistAck.model_validate(signed(ack))
    assert ack["status"] == "rejected" and ack["code"] == case.split(":")[0], ack
    assert ack["current_version"] == 2 and ack["counts"]["upserted"] == 0
    assert dump_whitelist(store.path) == before  # persons, templates, version, audit: untouched
    alarms = store.alarms(kind="whitelist_rejected")
    assert len(alarms) == alarms_before + 1 and alarms[0].details["code"] == ack["code"]
    assert alarms[0].severity == {"bad_signature": "high", "old_version": "info"}.get(ack["code"], "warning")
    assert any(json.loads(r.payload)["kind"] == "whitelist_rejected" for r in store.pending_outbox(100))


def test_entry_errors_apply_the_rest(tmp_path: Path, store: Store, admin: AdminKey, engine: FaceEngine) -> None:
    wl = applier(store, admin, engine)
    ok(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0)))
    blank = cv2.imencode(".jpg", np.full((240, 240, 3), 128, np.uint8))[1].tobytes()
    ack = ok(wl.handle(delta(admin, 2, [
        entry("R1", 0, templates=None, photo_jpeg=base64.b64encode(b"not a jpeg").decode(), name="New name"),
        {"id": "R2", "name": "Blank", "photo_jpeg": base64.b64encode(blank).decode()},
        entry("R3", 3, model="arcface_r100", status="suspended"),
        entry("R4", 4),
        entry("R5", 5, valid_from="2026-02-01T00:00:00Z", valid_until="2026-01-01T00:00:00Z"),
    ])))
    errors = {e["id"]: (e["code"], e["applied"]) for e in ack["errors"]}
    assert errors == {"R1": ("bad_photo", True), "R2": ("no_face", True), "R3": ("unknown_model", True),
                      "R5": ("invalid_entry", False)}
    assert ack["counts"] == {"upserted": 4, "patched": 0, "deleted": 0, "templates": 1}
    ids, matrix = store.load_templates(MODEL)
    assert ids == ["R1", "R4"] and np.allclose(matrix[0], embedding(31))  # R1 kept its old template
    assert store.get_person("R1").name == "New name"  # type: ignore[union-attr]  # the record still applies
    assert store.get_person("R3").status == "suspended"  # type: ignore[union-attr]  # a suspension is never lost
    assert store.get_person("R2") is not None and store.get_person("R5") is None


@pytest.mark.parametrize("keep", [False, True])
def test_photo_delta_makes_templates_and_discards_the_photo(tmp_path: Path, store: Store, admin: AdminKey,
                                                            engine: FaceEngine, unknowns_dir: Path,
                                                            keep: bool) -> None:
    photo = (unknowns_dir / "Male_45_5.jpg").read_bytes()
    photo_dir = tmp_path / "photos"
    wl = applier(store, admin, engine, keep_photos=keep, photo_dir=photo_dir if keep else None)
    ack = ok(wl.handle(delta(admin, 1, [{"id": "P1", "name": "Photo Person", "photo_jpeg":
                                         base64.b64encode(photo).decode()}], base=0)))
    assert ack["counts"]["templates"] == 1 and not ack["errors"]
    ids, matrix = store.load_templates(MODEL)
    face = engine.analyze(cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR))[0]
    assert ids == ["P1"] and float(matrix[0] @ face.embedding) > 0.999
    store.close()
    data = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))  # db + WAL
    assert photo[:2000] not in data and photo[-2000:] not in data  # no photo, not a piece of it, is stored
    assert (photo_dir / "P1.jpg").exists() == keep
    if keep:
        assert (photo_dir / "P1.jpg").read_bytes() == photo
        # residents' faces are the gate user's only, whatever the caller's umask (pytest runs with 022)
        assert stat.S_IMODE((photo_dir / "P1.jpg").stat().st_mode) == 0o600
        assert stat.S_IMODE(photo_dir.stat().st_mode) == 0o700
        assert not list(photo_dir.glob(".*.tmp"))
        reopened = Store.open(store.path)
        wl = applier(reopened, admin, engine, keep_photos=True, photo_dir=photo_dir)
        ok(wl.handle(delta(admin, 2, [], deletes=["P1"])))
        assert not (photo_dir / "P1.jpg").exists()  # a delete takes the kept photo too
        reopened.close()


def test_10k_snapshot_while_the_gallery_keeps_loading(store: Store, admin: AdminKey) -> None:
    wl = applier(store, admin)
    ok(wl.handle(delta(admin, 1, [entry(f"OLD{i}", 100_000 + i) for i in range(300)], base=0)))
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((10_000, 128)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    entries = [{"id": f"P{i:05d}", "name": f"Resident {i}",
                "templates": {"model_id": MODEL, "embeddings": [base64.b64encode(vecs[i].astype("<f4").tobytes())
                                                                .decode()]}} for i in range(10_000)]
    chunks = snapshot(admin, 2, entries, per_chunk=2500)
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def vision_loop() -> None:  # reloads and matches as the gate does after each apply
        try:
            while not stop.is_set():
                ids, matrix = store.load_templates(MODEL)
                gallery = Gallery(ids, matrix, MODEL)
                seen.add(len(gallery))
                gallery.match(vecs[17], 0.5, 0.05, 3)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=vision_loop)
    reader.start()
    try:
        for raw in chunks[:-1]:
            assert wl.handle(raw) is None
        ack = ok(wl.handle(chunks[-1]))
    finally:
        stop.set()
        reader.join(30)
    assert not errors, errors
    assert ack["counts"] == {"upserted": 10_000, "patched": 0, "deleted": 300, "templates": 10_000}
    assert seen <= {300, 10_000} and 300 in seen  # only whole versions, never a half-applied one
    ids, matrix = store.load_templates(MODEL)
    gallery = Gallery(ids, matrix, MODEL)
    match = gallery.match(vecs[1234], 0.5, 0.05, 3)
    assert len(gallery) == 10_000 and match.person_id == "P01234"
