"""Fault: SIGKILL in the middle of a whitelist apply. An admin pushes a big signed snapshot over MQTT to
the real `gate run` process, which is killed while it writes the snapshot into its store. After the
restart the whitelist is exactly the old version (never a mix of old and new), the store is sound,
no committed event is lost, and the gate asks for the snapshot again (the retained `current` pointer
is ahead of it) and applies it whole once it is resent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import (
    COMMUNITY,
    TOPICS,
    GateProcess,
    check_store,
    committed,
    gate_config,
    mqtt_section,
    query,
    wait_until,
)
from sync_helpers import MODEL, b64, entry

from edge.admin.build import build_push
from edge.admin.client import AdminClient
from edge.admin.publish import push
from edge.protocol.signing import AdminKey, public_key_text
from edge.store import Store
from edge.tools.broker import Mosquitto

NEW_PERSONS = 20_000  # about 5 s of apply on this machine: a wide window for the kill
VERSION = 7


def whitelist(db: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The whitelist as the store holds it: (version row, person ids, templates)."""
    return (query(db, "SELECT value FROM meta WHERE key = 'whitelist_version'"),
            query(db, "SELECT id FROM persons ORDER BY id"),
            query(db, "SELECT person_id, embedding FROM templates ORDER BY person_id, id"))


def snapshot_entries(db: Path) -> list[dict[str, Any]]:
    """The demo's residents with their own templates (so they are still let in) and many newcomers."""
    with Store.open(db) as store:
        ids, matrix = store.load_templates(MODEL)
        residents = [p for p in store.list_persons(limit=100) if p.kind == "resident"]
    templates = {pid: [b64(v) for i, v in enumerate(matrix) if ids[i] == pid] for pid in set(ids)}
    kept = [{"id": p.id, "name": p.name, "templates": {"model_id": MODEL, "embeddings": templates[p.id]}}
            for p in residents]
    return kept + [entry(f"N{i:06d}", i) for i in range(NEW_PERSONS)]


def acks(admin: AdminClient, since: int = 0) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in admin.messages[since:] if t == TOPICS.whitelist_ack]


@pytest.mark.fault
def test_sigkill_during_whitelist_apply(prepared: Path, tmp_path: Path, broker: Mosquitto) -> None:
    key = AdminKey.generate()
    config = gate_config(prepared, tmp_path, extra=mqtt_section(broker.url, public_key_text(key.public)))
    db = tmp_path / "data" / "gate.db"
    wal = Path(f"{db}-wal")
    entries = snapshot_entries(db)
    payloads = build_push(key, COMMUNITY, "snapshot", entries, [], version=VERSION)
    old = whitelist(db)
    assert old[0] == [] and len(old[1]) == 6

    admin = AdminClient(broker.url)
    admin.subscribe([TOPICS.whitelist_ack, TOPICS.available])
    gate = GateProcess(config, tmp_path, name="gate1")
    try:
        gate.wait_log("MQTT connected", 60)
        wait_until(lambda: len(gate.decisions) >= 2, 30, "the first decisions")
        push(admin, COMMUNITY, "snapshot", payloads, VERSION)  # chunks, then the retained `current` pointer
        gate.wait_log(f"snapshot {VERSION}: chunk {len(payloads)} of {len(payloads)} in", 60)
        # the apply is under way: its transaction spills pages into the write-ahead log (or, were it not
        # one transaction, persons would change in the store)
        grown = wal.stat().st_size + 4 * 1024 * 1024
        wait_until(lambda: wal.stat().st_size > grown or whitelist(db)[1] != old[1], 60,
                   "the apply to write into the store", every=0.01)
        before = committed(db)
        gate.kill()
    finally:
        if gate.alive():
            gate.kill()
    assert f"version {VERSION} applied" not in gate.log, "the apply finished before the kill"
    assert whitelist(db) == old  # exactly the old version
    with Store.open(db) as store:
        assert store.integrity_check() == "ok"

    survived = committed(db)
    assert before <= survived
    seen = len(admin.messages)
    gate = GateProcess(config, tmp_path, name="gate2")
    try:
        wait_until(lambda: any(a["status"] == "outdated" for a in acks(admin, seen)), 60,
                   "the restarted gate to ask for the snapshot")
        ask = next(a for a in acks(admin, seen) if a["status"] == "outdated")
        assert ask["need_snapshot"] and ask["version"] == VERSION and ask["current_version"] == 0
        seen, decided = len(admin.messages), len(gate.decisions)
        push(admin, COMMUNITY, "snapshot", payloads, VERSION)  # the admin answers with the snapshot again
        # (push() subscribes again, so the retained `outdated` ack comes back first)
        wait_until(lambda: any(a["status"] != "outdated" for a in acks(admin, seen)), 60,
                   "the ack of the resent snapshot")
        done = next(a for a in acks(admin, seen) if a["status"] != "outdated")
        assert done["status"] == "applied" and done["version"] == VERSION, done
        assert done["counts"] == {"upserted": len(entries), "patched": 0, "deleted": 1, "templates": len(entries)}
        assert len(gate.decisions) > decided  # recognition went on while the snapshot was applied
        decided = len(gate.decisions)
        wait_until(lambda: len(gate.decisions) > decided, 30, "decisions with the new whitelist")
        assert gate.stop() == 0, gate.log[-3000:]
    finally:
        if gate.alive():
            gate.kill()
        admin.close()
    version, ids, templates = whitelist(db)
    assert version == [(str(VERSION),)] and [i for (i,) in ids] == sorted(e["id"] for e in entries)
    assert len(templates) == len(entries)
    assert "Traceback" not in gate.log, gate.log[-3000:]
    stored = check_store(db, survived)
    # every decision of the restarted gate is stored, those made while the apply held the store included
    assert len(stored) == len(survived) + len(gate.decisions)
