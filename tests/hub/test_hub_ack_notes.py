"""The hub and the ack's optional `notes`: an ack a real gate applier made for a delta that deleted a
person the gate did not have (with notes) and one without them are both verified against the gate's key
and kept as the gate's last ack; a forged one with notes is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.hub.db import HubDatabase
from edge.protocol.messages import DELTA_SCHEMA
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.identity import seal
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto
from tests.hub.test_hub_service import COMMUNITY, hub_for
from tests.hub.test_register import MODEL


def _delta(admin: AdminKey, version: int, deletes: list[str]) -> bytes:
    now = datetime.now(UTC)
    return json.dumps(admin.sign({
        "schema": DELTA_SCHEMA, "community": COMMUNITY, "gate": None, "version": version,
        "base_version": version - 1, "issued_at": now.isoformat(), "expires_at": (now + timedelta(days=1)).isoformat(),
        "upserts": [], "deletes": deletes})).encode()


def test_the_hub_keeps_acks_with_and_without_notes(broker: Mosquitto, db: HubDatabase, tmp_path: Path) -> None:
    admin, north, forger = AdminKey.generate(), SigningKey.generate(), SigningKey.generate()
    hub = hub_for(broker, db, admin, tmp_path)
    hub.register.set_gate("north-1", north.public_text, "admin")
    topic = f"edge-gate/{COMMUNITY}/north-1/whitelist/ack"
    with Store.open(tmp_path / "gate.sqlite") as store:
        wl = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id="north-1")
        plain = wl.handle(_delta(admin, 1, []))
        noted = wl.handle(_delta(admin, 2, ["R404"]))
    assert plain is not None and "notes" not in plain
    assert noted is not None and noted["notes"] == [{"id": "R404", "code": "not_found"}]

    hub.handle(topic, seal(north, plain).encode())
    assert hub.gate_status()[0]["acked_version"] == 1
    hub.handle(topic, seal(north, noted).encode())
    (board,) = hub.gate_status()
    assert board["acked_version"] == 2 and board["last_ack"]["status"] == "applied"
    assert hub.counts["acks"] == 2 and hub.counts["unverified"] == 0

    hub.handle(topic, seal(forger, {**noted, "current_version": 9}).encode())  # notes do not make a forgery pass
    assert hub.gate_status()[0]["acked_version"] == 2 and hub.counts["unverified"] == 1
