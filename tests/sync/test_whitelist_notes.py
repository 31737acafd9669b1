"""A delta that deletes a person the gate does not have: still applied (the person is absent, as asked),
but the ack says so per entry (`notes`, bounded), the gate logs one line, and `gate admin push` prints
the notes. The real applier on a real SQLite store; the push through a real broker and the gate's real
MQTT side. Acks without notes stay what older readers know."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, delta, entry, gate_cli, gates_file

from edge.config.mqtt import MqttConfig
from edge.protocol.limits import MAX_ACK_NOTES
from edge.protocol.payloads import WhitelistAck
from edge.protocol.signing import AdminKey
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto
from tests.support.wire import signed


@pytest.fixture(scope="module")
def admin() -> AdminKey:
    return AdminKey.generate()


def ack_of(doc: dict[str, Any] | None) -> WhitelistAck:
    assert doc is not None
    return WhitelistAck.model_validate(signed(doc))  # closed and documented once signed


def whitelist_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edge.sync.whitelist" and r.levelno >= logging.WARNING]


def test_deleting_an_absent_person_is_applied_with_a_note(store: Store, admin: AdminKey,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.sync.whitelist")
    wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE)
    first = wl.handle(delta(admin, 1, [entry("R1", 1), entry("R2", 2)], base=0))
    assert first is not None and "notes" not in first  # nothing to note: the ack older readers know
    assert ack_of(first).notes == []

    ack = ack_of(wl.handle(delta(admin, 2, [], deletes=["R1", "GHOST", "R1"])))
    assert (ack.status, ack.code, ack.current_version) == ("applied", "ok", 2)
    assert ack.counts.deleted == 1 and ack.errors == []
    assert [(n.id, n.code) for n in ack.notes] == [("GHOST", "not_found")]  # R1 twice: deleted once, no note
    assert "1 deleted person(s) were not here" in ack.message
    assert store.get_person("R1") is None and store.get_person("R2") is not None and wl.version == 2
    (line,) = whitelist_lines(caplog)
    assert "version 2 deletes 1 person(s) this gate does not have (GHOST)" in line

    # the same delete again, of someone gone now: idempotent, noted again
    again = ack_of(wl.handle(delta(admin, 3, [], deletes=["R1"])))
    assert again.status == "applied" and again.counts.deleted == 0 and [n.id for n in again.notes] == ["R1"]


def test_notes_are_bounded_and_the_message_gives_the_total(store: Store, admin: AdminKey,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.sync.whitelist")
    wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE)
    ghosts = [f"G{i:04d}" for i in range(MAX_ACK_NOTES + 50)]
    raw = wl.handle(delta(admin, 1, [entry("R1", 1)], deletes=ghosts, base=0))
    ack = ack_of(raw)
    assert ack.status == "applied" and ack.counts.upserted == 1
    assert [n.id for n in ack.notes] == ghosts[:MAX_ACK_NOTES]
    assert f"{MAX_ACK_NOTES + 50} deleted person(s) were not here" in ack.message
    (line,) = whitelist_lines(caplog)  # one line, not one per id
    assert f"deletes {MAX_ACK_NOTES + 50} person(s)" in line and "and 140 more" in line
    assert raw is not None
    too_many = {**raw, "notes": raw["notes"] + [{"id": "X", "code": "not_found"}]}
    with pytest.raises(ValidationError):
        WhitelistAck.model_validate(signed(too_many))
    with pytest.raises(ValidationError):  # closed: a code the protocol does not define is refused
        WhitelistAck.model_validate(signed({**raw, "notes": [{"id": "X", "code": "gone"}]}))


def test_admin_push_prints_the_gates_notes(tmp_path: Path, broker: Mosquitto, store: Store) -> None:
    key = tmp_path / "admin.pem"
    made = gate_cli("admin", "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, admin_public_keys=[made.stdout.strip()])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"deletes": ["R404", "R405"]}))
    sync.start()
    try:
        assert sync.wait_connected(30)
        done = gate_cli("admin", "push", "--broker", broker.url, "--community", COMMUNITY, "--key", str(key),
                        "--delta", str(changes), "--version", "7", "--base-version", "0", "--acks", "1",
                        "--timeout", "60", "--gates", str(gates_file(tmp_path / "gates.json")))
    finally:
        sync.stop()
    assert done.returncode == 0, done.stdout + done.stderr  # applied: a delete of someone absent is no failure
    ack = json.loads(done.stdout.splitlines()[-1])
    assert ack["status"] == "applied" and ack["notes"] == [{"id": "R404", "code": "not_found"},
                                                           {"id": "R405", "code": "not_found"}]
    assert (f"note: gate {GATE} did not have 2 of the deleted person(s) (the delete changed nothing there): "
            "R404, R405") in done.stderr.splitlines(), done.stderr
    assert wl.version == 7
