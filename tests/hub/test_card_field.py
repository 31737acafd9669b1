"""A person's `card` end to end: the hub's register (both databases) and `gate hub person add|update --card`,
the signed deltas and snapshots a real gate applies (WhitelistApplier on a real SQLite store), the gate's
store (a column added by a migration to an older file), patches that change and clear it, the admin's
CSV person file, and the refusals (text, negative, too large, a boolean) as one line."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from test_hub_cli import hub
from test_register import MODEL, person

from edge.admin.person_file import PersonFileError, read_person_file
from edge.hub.db import HubDatabase
from edge.hub.messages import delta_payload, snapshot_payloads
from edge.hub.register import Register, RegisterError
from edge.protocol.messages import PersonEntry, PersonPatch
from edge.protocol.signing import AdminKey
from edge.records import PersonRecord
from edge.store import Store
from edge.store.migrations import MIGRATIONS, migrate
from edge.sync.whitelist import WhitelistApplier

COMMUNITY = "maple"


def test_the_card_goes_from_the_register_to_the_gate_and_can_be_cleared(db: HubDatabase, tmp_path: Path) -> None:
    admin = AdminKey.generate()
    reg = Register(db)
    reg.upsert([person("R1", 1, card=4294967295), person("R2", 2)], "admin")
    reg.patch("R2", {"card": 12345}, "admin")
    reg.patch("R1", {"card": None}, "admin")  # lost badge: no card any more
    r1, r2 = reg.person("R1"), reg.person("R2")
    assert r1 is not None and "card" not in r1 and r2 is not None and r2["card"] == 12345
    with Store.open(tmp_path / "gate.sqlite") as store:
        wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id="north-1")
        for change in reg.changes_after(0)[:1]:  # the upsert: R1's 32-bit card arrives whole
            ack = wl.handle(delta_payload(admin, COMMUNITY, change, valid_for=timedelta(hours=1)))
            assert ack is not None and ack["status"] == "applied", ack
        got = store.get_person("R1")
        assert got is not None and got.card == 4294967295 and store.get_person("R2").card is None  # type: ignore[union-attr]
        for change in reg.changes_after(1):
            ack = wl.handle(delta_payload(admin, COMMUNITY, change, valid_for=timedelta(hours=1)))
            assert ack is not None and ack["status"] == "applied", ack
        assert [store.get_person(p).card for p in ("R1", "R2")] == [None, 12345]  # type: ignore[union-attr]
    with Store.open(tmp_path / "new-gate.sqlite") as store:  # a snapshot carries it too
        wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id="south-2")
        chunks = snapshot_payloads(admin, COMMUNITY, reg, gate="south-2", valid_for=timedelta(hours=1))
        acks = [wl.handle(c) for c in chunks]
        assert acks[-1] is not None and acks[-1]["status"] == "applied"
        assert store.get_person("R2").card == 12345 and store.get_person("R1").card is None  # type: ignore[union-attr]


@pytest.mark.parametrize("card", ["12345", -1, 4294967296, True, 1.5])
def test_a_bad_card_is_refused_everywhere(db: HubDatabase, card: object) -> None:
    reg = Register(db)
    with pytest.raises(RegisterError, match="card"):
        reg.upsert([person("R1", 1, card=card)], "admin")
    with pytest.raises(ValidationError):
        PersonEntry.model_validate({"id": "R1", "name": "x", "card": card})
    with pytest.raises(ValidationError):
        PersonPatch.model_validate({"id": "R1", "card": card})
    with pytest.raises(ValueError, match="card"):
        PersonRecord(id="R1", name="x", card=card)  # type: ignore[arg-type]
    assert reg.version == 0


def test_an_older_gate_store_gains_the_card_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:-1])  # the store as the release before the card
    conn.execute("INSERT INTO persons (id, name, kind, status, max_uses, uses, allowed_gates, directions, "
                 "updated_at) VALUES ('R1', 'Old', 'resident', 'active', NULL, 0, '[]', '[]', "
                 "'2026-01-01T00:00:00.000000Z')")
    conn.close()
    with Store.open(path) as store:
        old = store.get_person("R1")
        assert old is not None and old.card is None
        store.upsert_person(PersonRecord(id="R1", name="Old", card=7))
        assert store.get_person("R1").card == 7  # type: ignore[union-attr]
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE persons SET card = -5")  # the table refuses what the record would


def test_the_admin_csv_takes_a_card_column(tmp_path: Path) -> None:
    good = tmp_path / "persons.csv"
    good.write_text("id,name,card\nR1,Li,0042\nR2,Wu,\n", encoding="utf-8")
    upserts, _ = read_person_file(good)
    assert [(u["id"], u.get("card")) for u in upserts] == [("R1", 42), ("R2", None)]
    for bad in ("12a", "-3", "4294967296"):
        path = tmp_path / "bad.csv"
        path.write_text(f"id,name,card\nR1,Li,{bad}\n", encoding="utf-8")
        with pytest.raises(PersonFileError, match="card"):
            read_person_file(path)


def test_hub_person_add_and_update_with_card(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\ncommunity = "maple"\ndata_dir = "data"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n')
    assert hub("init", config=config).returncode == 0
    added = hub("person", "add", "--id", "R1", "--name", "Li", "--card", "4660", config=config)
    assert added.returncode == 0, added.stderr
    assert hub("person", "update", "R1", "--card", "65535", config=config).returncode == 0
    reg = Register(HubDatabase.open(str(tmp_path / "data" / "hub.db")))
    try:
        assert reg.person("R1")["card"] == 65535  # type: ignore[index]
        assert hub("person", "update", "R1", "--no-card", config=config).returncode == 0
        assert "card" not in reg.person("R1")  # type: ignore[operator]
    finally:
        reg.db.close()
    bad = hub("person", "update", "R1", "--card", "12x", config=config)
    assert bad.returncode == 2 and "card number" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].endswith("'12x' is not a card number (a whole number 0..4294967295)")
    hub("person", "update", "R1", "--card", "77", config=config)
    assert json.loads(hub("person", "list", config=config).stdout.splitlines()[0])["card"] == 77
