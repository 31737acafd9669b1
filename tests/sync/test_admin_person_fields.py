"""Every person field of a person file reaches the gate: a CSV delta and a JSON delta with all of them
(allowed gates, directions, a weekly schedule, validity, uses, care watch, unit, kind, status), pushed
by the real `gate admin push` through a real broker to a real gate (MqttSync and WhitelistApplier on a
real store), which applies and acks them; the store then holds each field as written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, embedding, gate_cli, gates_file

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, public_key_text
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto


def _vectors(seed: int) -> str:
    return json.dumps([[round(float(x), 6) for x in embedding(seed)]])


def test_every_field_of_a_csv_and_a_json_file_reaches_the_gate(tmp_path: Path, broker: Mosquitto,
                                                                store: Store) -> None:
    key = AdminKey.generate()
    key.save(tmp_path / "admin.pem")
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(key.public)])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    csv_file = tmp_path / "persons.csv"
    csv_file.write_text(
        "id,name,kind,status,unit,valid_from,valid_until,max_uses,allowed_gates,directions,schedule,"
        "care_watch_hours,embeddings,model_id\n"
        f'V1,Guest,visitor,active,2-201,2026-12-01T08:00:00+08:00,2099-12-08T08:00:00Z,3,"gate-a;gate-b",in,'
        f'"mon-fri 07:00-22:00; sat,sun 09:00-12:00 14:00-18:00",,"{_vectors(1)}",{MODEL}\n'
        f'R1,Grandma Li,resident,active,3-301,,,,,"in out",,12,"{_vectors(2)}",{MODEL}\n', encoding="utf-8")
    json_file = tmp_path / "persons.json"
    json_file.write_text(json.dumps({"persons": [
        {"id": "S1", "name": "Guard Wu", "kind": "staff", "status": "suspended", "unit": None,
         "allowed_gates": ["gate-a"], "directions": ["out"], "schedule": {"sun": [["22:00", "06:00"]]},
         "valid_until": "2099-01-01T00:00:00+00:00", "embeddings": json.loads(_vectors(3)), "model_id": MODEL}],
        "deletes": ["R1"]}), encoding="utf-8")
    sync.start()
    try:
        assert sync.wait_connected(30)
        for version, person_file in ((1, csv_file), (2, json_file)):
            proc = gate_cli("admin", "push", "--broker", broker.url, "--community", COMMUNITY, "--key",
                            str(tmp_path / "admin.pem"), "--delta", str(person_file), "--version", str(version),
                            "--acks", "1", "--gates", str(gates_file(tmp_path / "gates.json")), "--timeout", "60")
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout.splitlines()[-1])["status"] == "applied"
            if version == 1:  # before the JSON delta deletes R1
                r1 = store.get_person("R1")
                assert r1 is not None and r1.directions == ("in", "out") and r1.care_watch_hours == 12.0
                assert r1.unit == "3-301" and r1.allowed_gates == () and r1.schedule is None
    finally:
        sync.stop()
    v1, s1 = store.get_person("V1"), store.get_person("S1")
    assert v1 is not None and s1 is not None and store.get_person("R1") is None
    assert (v1.kind, v1.status, v1.unit, v1.max_uses) == ("visitor", "active", "2-201", 3)
    assert v1.valid_from == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # +08:00 written, UTC stored
    assert v1.valid_until == datetime(2099, 12, 8, 8, 0, tzinfo=UTC)
    assert v1.allowed_gates == ("gate-a", "gate-b") and v1.directions == ("in",)
    assert v1.schedule is not None and v1.schedule.to_json() == {
        **{d: [["07:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        **{d: [["09:00", "12:00"], ["14:00", "18:00"]] for d in ("sat", "sun")}}
    assert (s1.kind, s1.status, s1.unit, s1.allowed_gates, s1.directions) == ("staff", "suspended", None,
                                                                              ("gate-a",), ("out",))
    assert s1.schedule is not None and s1.schedule.to_json() == {"sun": [["22:00", "06:00"]]}
    assert s1.valid_until == datetime(2099, 1, 1, tzinfo=UTC)
