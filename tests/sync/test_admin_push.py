"""`gate admin push` against the gate's limits: snapshot chunks stay under both the entry and the byte
limit (photo entries are large), a delta too large for one message becomes consecutive versions, and a
photo snapshot too big for one message goes from the real CLI through a real broker to a real gate
(WhitelistApplier with the face engine, MqttSync), which applies it and acks."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, Subscriber, entry, gates_file, wait_until

from edge.admin.build import build_push, payload_version
from edge.admin.person_file import read_person_file
from edge.config.mqtt import MqttConfig
from edge.protocol.limits import MAX_ENTRIES_PER_MESSAGE, MAX_PAYLOAD_BYTES
from edge.protocol.messages import Delta, SnapshotChunk, parse_push
from edge.protocol.signing import AdminKey
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto
from edge.vision import FaceEngine

REPO = Path(__file__).resolve().parents[2]
PHOTO_PERSONS = 120  # ~300 KB of base64 each: about 36 MB, three messages of at most 16 MB


def gate_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def photo_csv(path: Path, photos: list[Path], n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "name", "unit", "photo"])
        w.writeheader()
        for i in range(n):
            w.writerow({"id": f"P{i:03d}", "name": f"Resident {i}", "unit": f"{i // 10}-{i % 10:02d}",
                        "photo": str(photos[i % len(photos)])})
    return path


@pytest.fixture(scope="module")
def admin() -> AdminKey:
    return AdminKey.generate()


def test_snapshot_chunks_respect_the_byte_limit(tmp_path: Path, admin: AdminKey, unknown_photos: list[Path]) -> None:
    upserts, _ = read_person_file(photo_csv(tmp_path / "persons.csv", unknown_photos, PHOTO_PERSONS))
    whole = sum(len(json.dumps(u, ensure_ascii=False).encode()) for u in upserts)
    assert whole > 2 * MAX_PAYLOAD_BYTES  # the old 5,000-per-message chunking made one message of all of it
    payloads = build_push(admin, COMMUNITY, "snapshot", upserts, [], version=3)
    assert len(payloads) == 3 and all(len(p) <= MAX_PAYLOAD_BYTES for p in payloads)
    chunks = [parse_push(p, [admin.public]) for p in payloads]  # what a gate accepts, signature and all
    for i in range(len(payloads) - 1):  # packed: the next chunk's first entry would not have fitted
        nxt = json.loads(payloads[i + 1])["entries"][0]
        assert len(payloads[i]) + len(json.dumps(nxt, ensure_ascii=False).encode()) + 2 > MAX_PAYLOAD_BYTES
    assert all(isinstance(c, SnapshotChunk) for c in chunks)
    assert [(c.chunk, c.chunks, c.total_persons, c.version) for c in chunks if isinstance(c, SnapshotChunk)] == [
        (0, 3, PHOTO_PERSONS, 3), (1, 3, PHOTO_PERSONS, 3), (2, 3, PHOTO_PERSONS, 3)]
    assert [e.id for c in chunks if isinstance(c, SnapshotChunk) for e in c.entries] == [u["id"] for u in upserts]
    # a lower broker limit (EMQX's default is 1 MB) is honoured the same way
    small = build_push(admin, COMMUNITY, "snapshot", upserts[:12], [], version=3, max_bytes=1_000_000)
    assert len(small) >= 4 and all(len(p) <= 1_000_000 for p in small)
    with pytest.raises(ValueError, match="cannot fit"):
        build_push(admin, COMMUNITY, "snapshot", upserts[:1], [], version=3, max_bytes=100_000)
    with pytest.raises(ValueError, match="gates refuse"):
        build_push(admin, COMMUNITY, "snapshot", upserts[:1], [], version=3, max_bytes=MAX_PAYLOAD_BYTES + 1)


def test_snapshot_chunks_respect_the_entry_limit(admin: AdminKey) -> None:
    entries = [entry(f"E{i:05d}", i) for i in range(2 * MAX_ENTRIES_PER_MESSAGE + 1)]
    payloads = build_push(admin, COMMUNITY, "snapshot", entries, [], version=4)
    chunks = [parse_push(p, [admin.public]) for p in payloads]
    assert [len(c.entries) for c in chunks if isinstance(c, SnapshotChunk)] == [
        MAX_ENTRIES_PER_MESSAGE, MAX_ENTRIES_PER_MESSAGE, 1]


def applier(store: Store, admin: AdminKey, **kw: Any) -> WhitelistApplier:
    return WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE, **kw)


def test_large_delta_becomes_consecutive_versions(store: Store, admin: AdminKey, tmp_path: Path) -> None:
    wl = applier(store, admin)
    old = [entry(f"OLD{i:05d}", 50_000 + i) for i in range(7_000)]
    assert len(build_push(admin, COMMUNITY, "delta", old[:MAX_ENTRIES_PER_MESSAGE], [], version=1, base_version=0)) == 1
    for raw in build_push(admin, COMMUNITY, "delta", old, [], version=1, base_version=0):
        assert wl.handle(raw)["status"] == "applied"  # type: ignore[index]
    assert wl.version == 2 and store.count_persons() == 7_000  # 5,000 + 2,000: versions 1 and 2

    new = [entry(f"NEW{i:05d}", i) for i in range(11_000)]
    gone = [p["id"] for p in old[:6_000]]
    payloads = build_push(admin, COMMUNITY, "delta", new, gone, version=10, base_version=2)
    parts = [parse_push(p, [admin.public]) for p in payloads]
    assert all(isinstance(d, Delta) for d in parts) and all(len(p) <= MAX_PAYLOAD_BYTES for p in payloads)
    deltas = [d for d in parts if isinstance(d, Delta)]
    assert [(d.base_version, d.version) for d in deltas] == [(2, 10), (10, 11), (11, 12), (12, 13)]
    # per message at most 5,000 deletes and 5,000 upserts (each list has the gate's limit); deletes first
    assert [(len(d.deletes), len(d.upserts)) for d in deltas] == [(5_000, 0), (1_000, 5_000), (0, 5_000),
                                                                  (0, 1_000)]
    assert payload_version(payloads[-1]) == 13

    # a gate that misses a part refuses the next as a gap and asks for a snapshot: nothing half-applied
    other = Store.open(tmp_path / "other.sqlite")
    try:
        lagging = applier(other, admin)
        for raw in build_push(admin, COMMUNITY, "delta", old, [], version=1, base_version=0):
            lagging.handle(raw)
        lagging.handle(payloads[0])
        gap = lagging.handle(payloads[2])
        assert gap is not None and gap["code"] == "version_gap" and gap["need_snapshot"] and lagging.version == 10
    finally:
        other.close()

    acks = [wl.handle(p) for p in payloads]
    assert [a["status"] for a in acks if a] == ["applied"] * 4 and wl.version == 13
    assert store.count_persons() == 1_000 + 11_000 and store.get_person("OLD00000") is None


def test_cli_photo_snapshot_in_several_messages_is_applied_and_acked(
        tmp_path: Path, broker: Mosquitto, store: Store, engine: FaceEngine, unknown_photos: list[Path]) -> None:
    key = tmp_path / "admin.pem"
    made = gate_cli("admin", "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, admin_public_keys=[made.stdout.strip()])
    wl = WhitelistApplier(store, engine, engine.model_id, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    sub = Subscriber(broker.port, [f"edge-gate/{COMMUNITY}/whitelist/snapshot"], client_id="counter")
    sync.start()
    try:
        assert sync.wait_connected(10)
        persons = photo_csv(tmp_path / "persons.csv", unknown_photos, PHOTO_PERSONS)
        done = gate_cli("admin", "push", "--broker", broker.url, "--community", COMMUNITY, "--key", str(key),
                        "--snapshot", str(persons), "--version", "5", "--acks", "1", "--timeout", "150",
                        "--gates", str(gates_file(tmp_path / "gates.json")))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 message(s)" in done.stderr, done.stderr
        ack = json.loads(done.stdout.splitlines()[-1])
        assert ack["status"] == "applied" and ack["version"] == 5 and ack["gate"] == GATE
        assert ack["counts"]["upserted"] == PHOTO_PERSONS and ack["counts"]["templates"] >= PHOTO_PERSONS - 30
        assert ack["counts"]["templates"] + len(ack["errors"]) == PHOTO_PERSONS  # no face / low quality: listed
        assert {e["code"] for e in ack["errors"]} <= {"no_face", "low_quality"}
        assert wl.version == 5 and store.count_persons() == PHOTO_PERSONS
        assert store.count_templates(engine.model_id) == ack["counts"]["templates"]
        wait_until(lambda: len(sub.on(f"edge-gate/{COMMUNITY}/whitelist/snapshot")) == 3, 5, "the chunks")
        assert all(len(p) <= MAX_PAYLOAD_BYTES for p in sub.on(f"edge-gate/{COMMUNITY}/whitelist/snapshot"))
        assert sync.health()["last_error"] is None
        sizes = sorted(len(p) for p in sub.on(f"edge-gate/{COMMUNITY}/whitelist/snapshot"))
        print(f"{PHOTO_PERSONS} photo persons in messages of {sizes} bytes; {ack['counts']['templates']} "
              f"templates, {len(ack['errors'])} entry errors")
    finally:
        sync.stop()
        sub.close()
