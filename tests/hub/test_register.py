"""The hub's register on both databases (SQLite, and a real PostgreSQL 15): every change is one version
and one delta; the deltas and snapshots it makes are signed pushes a real gate applies; refusals are
one line and change nothing; the schema migrates once and survives a reopen."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from edge.hub.db import MIGRATIONS, HubDatabase
from edge.hub.messages import delta_payload, snapshot_payloads
from edge.hub.register import Register, RegisterError
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.whitelist import WhitelistApplier

MODEL = "sface_2021dec"
COMMUNITY = "maple"


def templates(seed: int) -> dict[str, object]:
    v = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    return {"model_id": MODEL, "embeddings": [base64.b64encode((v / np.linalg.norm(v)).tobytes()).decode()]}


def person(pid: str, seed: int, **over: object) -> dict[str, object]:
    return {"id": pid, "name": f"Resident {pid}", "unit": "2-301", "templates": templates(seed), **over}


def test_each_change_is_one_version_and_one_delta(db: HubDatabase) -> None:
    reg = Register(db)
    gate = SigningKey.generate()
    assert reg.version == 0
    assert reg.set_gate("north-1", gate.public_text, "admin") == 1
    assert reg.upsert([person("R1", 1), person("R2", 2)], "admin") == 2
    assert reg.patch("R1", {"status": "suspended"}, "admin") == 3
    assert reg.delete(["R2"], "admin") == 4
    changes = reg.changes_after(0)
    assert [c.version for c in changes] == [1, 2, 3, 4]
    assert changes[0].body["gates"] == [{"gate_id": "north-1", "public_key": gate.public_text}]
    assert [u["id"] for u in changes[1].body["upserts"]] == ["R1", "R2"] and changes[1].body["gates"] is None
    assert changes[2].body["patches"] == [{"id": "R1", "status": "suspended"}]
    assert changes[3].body["deletes"] == ["R2"]
    r1 = reg.person("R1")
    assert r1 is not None and r1["status"] == "suspended" and r1["templates"] == templates(1)
    assert reg.person("R2") is None and [p["id"] for p in reg.persons()] == ["R1"]
    assert [c.version for c in reg.unpublished()] == [1, 2, 3, 4]
    reg.mark_published(1)
    assert [c.version for c in reg.unpublished()] == [2, 3, 4]
    audit = db.rows("SELECT seq, actor, action FROM audit ORDER BY seq")
    assert audit == [(1, "admin", "gate_set"), (2, "admin", "person_upsert"), (3, "admin", "person_patch"),
                     (4, "admin", "person_delete")]


def test_an_upsert_without_templates_keeps_the_ones_the_hub_has(db: HubDatabase) -> None:
    reg = Register(db)
    reg.upsert([person("R1", 1)], "admin")
    reg.upsert([{"id": "R1", "name": "Renamed", "unit": "9-9"}], "admin")
    r1 = reg.person("R1")
    assert r1 is not None and r1["name"] == "Renamed" and r1["templates"] == templates(1)
    assert "templates" not in reg.changes_after(1)[0].body["upserts"][0]  # the gates keep theirs too


@pytest.mark.parametrize("change, message", [
    (lambda r: r.patch("NOPE", {"status": "active"}, "a"), "no person NOPE"),
    (lambda r: r.patch("R1", {"colour": "red"}, "a"), "colour"),
    (lambda r: r.patch("R1", {"max_uses": 0}, "a"), "max_uses"),
    (lambda r: r.upsert([{"id": "bad id!", "name": "x"}], "a"), "bad id!"),
    (lambda r: r.upsert([{"id": "R9", "name": "x", "photo_jpeg": "AAAA"}], "a"), "no photos"),
    (lambda r: r.delete(["R1", "NOPE"], "a"), "no person NOPE"),
    (lambda r: r.set_gate("g", "ed25519:nope", "a"), "public_key"),
    (lambda r: r.remove_gate("nope", "a"), "no gate nope"),
])
def test_a_refused_change_is_one_line_and_changes_nothing(db: HubDatabase, change: object, message: str) -> None:
    reg = Register(db)
    reg.upsert([person("R1", 1)], "admin")
    before = (reg.version, reg.persons(), reg.gates(), len(reg.changes_after(0)))
    with pytest.raises(RegisterError, match=message) as err:
        change(reg)  # type: ignore[operator]
    assert "\n" not in str(err.value)
    assert (reg.version, reg.persons(), reg.gates(), len(reg.changes_after(0))) == before


def test_deltas_and_snapshots_are_signed_pushes_a_gate_applies(db: HubDatabase, tmp_path: Path) -> None:
    admin, north = AdminKey.generate(), SigningKey.generate()
    reg = Register(db)
    reg.set_gate("north-1", north.public_text, "admin")
    reg.upsert([person(f"R{i}", i) for i in range(1, 6)], "admin")
    reg.patch("R2", {"status": "suspended", "name": "Wang Fang"}, "admin")
    with Store.open(tmp_path / "gate.sqlite") as store:
        wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id="north-1")
        for change in reg.changes_after(0):
            ack = wl.handle(delta_payload(admin, COMMUNITY, change, valid_for=timedelta(hours=1)))
            assert ack is not None and ack["status"] == "applied", ack
        assert wl.version == 3 and len(wl.members) == 1
        r2 = store.get_person("R2")
        assert r2 is not None and (r2.status, r2.name) == ("suspended", "Wang Fang")
    with Store.open(tmp_path / "new-gate.sqlite") as store:  # a new gate: one snapshot brings it up to date
        wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id="south-2")
        chunks = snapshot_payloads(admin, COMMUNITY, reg, gate="south-2",
                                   valid_for=timedelta(hours=1))
        acks = [wl.handle(c) for c in chunks]
        assert acks[-1] is not None and acks[-1]["status"] == "applied" and wl.version == 3
        assert store.count_persons() == 5 and store.count_templates(MODEL) == 5
        assert json.loads(chunks[0])["gate"] == "south-2"


def test_the_schema_migrates_once_and_survives_a_reopen(database_url: str) -> None:
    first = HubDatabase.open(database_url)
    Register(first).upsert([person("R1", 1)], "admin")
    first.close()
    again = HubDatabase.open(database_url)
    try:
        assert again.one("SELECT version FROM schema_version") == (len(MIGRATIONS),)
        assert Register(again).version == 1 and Register(again).person("R1") is not None
    finally:
        again.close()


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    from edge.hub.db import HubDbError
    from edge.tools.broker import free_port

    with pytest.raises(HubDbError, match="cannot connect") as err:
        HubDatabase.open(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    assert "\n" not in str(err.value)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HubDbError, match="cannot open"):
        HubDatabase.open(str(blocker / "hub.db"))
