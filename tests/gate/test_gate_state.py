"""What the running gate remembers between faces and across a restart, with the real Gate on the demo
scene: a visitor's max_uses holds from the next face on (a grant here or at a peer gate counts at
once, a redelivered peer event once), recent passages are reloaded from SQLite so a restart does not
forget anti-passback, and the care watch alarms once for a resident not seen for too long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gate_helpers import camera_of, codes, demo_root, gate_config, run_until

from edge.config import load_config
from edge.gate import Gate
from edge.lane import Outcome
from edge.protocol.payloads import HUB_STATE_SCHEMA, PASSAGES_SCHEMA, HubState, Passages
from edge.records import ts_text
from edge.store import Passage, PersonRecord, Store


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "state")


def valid_visitor(db: Path, max_uses: int) -> None:
    now = datetime.now(UTC)
    with Store.open(db) as store:
        v = store.get_person("V001")
        assert v is not None
        store.upsert_person(PersonRecord(id="V001", name=v.name, kind="visitor", max_uses=max_uses, uses=0,
                                         valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=1)))


@pytest.mark.slow
def test_a_visitor_with_one_use_is_let_in_once(prepared: Path, tmp_path: Path) -> None:
    cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, "V001")))
    db = cfg.gate.data_dir / "gate.db"
    valid_visitor(db, max_uses=1)
    outcomes: list[Outcome] = []
    gate = Gate(cfg, on_outcome=outcomes.append)
    run_until(gate, lambda: sum(o.event.person_id == "V001" for o in outcomes) >= 3)
    visitor = [o for o in outcomes if o.event.person_id == "V001"]
    assert visitor[0].event.decision == "grant"
    for later in visitor[1:]:  # the same visitor again, minutes or seconds later: the pass is used up
        assert later.event.decision == "deny" and "uses_exhausted" in codes(later), codes(later)
        reason = next(r for r in later.event.reasons if r["code"] == "uses_exhausted")
        assert reason["params"] == {"uses": 1, "max_uses": 1}
    with Store.open(db) as store:
        person = store.get_person("V001")
        assert person is not None and person.uses == 1  # the store counted the same one use
        assert len(store.events(person_id="V001", decision="grant")) == 1


@pytest.mark.slow
def test_a_use_at_a_peer_gate_counts_once_however_often_it_is_delivered(prepared: Path, tmp_path: Path) -> None:
    cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, "V001")))
    db = cfg.gate.data_dir / "gate.db"
    valid_visitor(db, max_uses=2)
    outcomes: list[Outcome] = []
    gate = Gate(cfg, on_outcome=outcomes.append)
    peer = {"decision": "grant", "person_id": "V001", "gate_id": "north-2", "direction": "in",
            "ts": ts_text(datetime.now(UTC) - timedelta(minutes=5))}
    for _ in range(2):  # what MqttSync hands over for a peer gate's event, delivered twice (QoS 1)
        gate.peers.on_event(dict(peer))
    run_until(gate, lambda: sum(o.event.person_id == "V001" for o in outcomes) >= 2)
    visitor = [o.event for o in outcomes if o.event.person_id == "V001"]
    assert visitor[0].decision == "grant"  # the second of two uses (the first was at north-2)
    assert visitor[1].decision == "deny" and visitor[1].reasons[0]["params"] == {"uses": 2, "max_uses": 2}
    with Store.open(db) as store:
        person = store.get_person("V001")
        assert person is not None and person.uses == 2
        assert [p.gate_id for p in store.recent_passages("V001", datetime.now(UTC) - timedelta(hours=1))] \
            == ["north-2", "south-1"]


@pytest.mark.slow
def test_the_hubs_backfill_counts_each_missed_passage_once(prepared: Path, tmp_path: Path) -> None:
    """Passages the gate missed while away, from the hub (signed; the intake verified them): each a passage
    and one use, once even when the live event also came; its own gate's and future ones left out."""
    cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, "V001")))
    db = cfg.gate.data_dir / "gate.db"
    valid_visitor(db, max_uses=3)
    outcomes: list[Outcome] = []
    gate = Gate(cfg, on_outcome=outcomes.append)
    now = datetime.now(UTC)
    when = now - timedelta(minutes=30)
    gate.peers.on_event({"decision": "grant", "person_id": "V001", "gate_id": "north-2", "direction": "in",
                         "ts": ts_text(when)})  # the live event came too

    def answer() -> Passages:
        return Passages.model_validate({
            "schema": PASSAGES_SCHEMA, "community": "c", "gate": cfg.gate.id, "since": now - timedelta(hours=1),
            "more": False, "ts": now, "signature": {"alg": "ed25519", "key_id": "0" * 16, "value": ""},
            "passages": [
                {"person_id": "V001", "ts": when, "gate_id": "north-2", "direction": "in"},  # the same one
                {"person_id": "V001", "ts": now - timedelta(minutes=20), "gate_id": "east-3", "direction": "in"},
                {"person_id": "V001", "ts": now - timedelta(minutes=10), "gate_id": cfg.gate.id, "direction": "in"},
                {"person_id": "V001", "ts": now + timedelta(days=1), "gate_id": "east-3", "direction": "in"}]})
    written = []

    def script() -> bool:
        if not written:
            gate.peers.on_backfill(answer())
            gate.peers.on_backfill(answer())  # asked twice (a reconnect): nothing counted twice
            written.append(gate.writer.submit(gate.store.outbox_depth))
        return written[0].done()
    run_until(gate, script)
    with Store.open(db) as store:
        person = store.get_person("V001")
        assert person is not None and person.uses == 2  # north-2 and east-3, once each
        assert sorted(p.gate_id for p in store.recent_passages("V001", now - timedelta(hours=1))) == \
            ["east-3", "north-2"]


@pytest.mark.slow
def test_anti_passback_survives_a_restart(prepared: Path, tmp_path: Path) -> None:
    camera = camera_of(prepared, tmp_path, "R001")
    cfg = load_config(gate_config(prepared, tmp_path, camera, policy="anti_passback_s = 600"))
    first: list[Outcome] = []
    run_until(Gate(cfg, on_outcome=first.append), lambda: any(o.event.person_id == "R001" for o in first))
    assert next(o.event.decision for o in first if o.event.person_id == "R001") == "grant"

    again: list[Outcome] = []  # the gate restarts (a crash, an update) while Tom is still in the lane
    cfg = load_config(gate_config(prepared, tmp_path, camera, policy="anti_passback_s = 600", fresh=False))
    run_until(Gate(cfg, on_outcome=again.append), lambda: any(o.event.person_id == "R001" for o in again))
    back = next(o for o in again if o.event.person_id == "R001")
    assert back.event.decision == "deny" and "anti_passback" in codes(back), codes(back)


@pytest.mark.slow
def _care_gate(prepared: Path, tmp_path: Path) -> tuple[Gate, Path, list[dict[str, object]]]:
    """A gate where R002 (care watch 2 h) was last seen 3 h ago and R004 20 min ago; its alarms as seen."""
    cfg = load_config(gate_config(prepared, tmp_path, camera_of(prepared, tmp_path, None)))
    db = cfg.gate.data_dir / "gate.db"
    now = datetime.now(UTC)
    with Store.open(db) as store:
        for pid, seen in (("R002", now - timedelta(hours=3)), ("R004", now - timedelta(minutes=20))):
            p = store.get_person(pid)
            assert p is not None
            store.upsert_person(PersonRecord(id=pid, name=p.name, care_watch_hours=2, unit="B2-301",
                                             updated_at=now - timedelta(days=1)))
            store.record_passage(Passage(pid, seen, "north-2", "in"))
    gate = Gate(cfg)
    alarms: list[dict[str, object]] = []
    gate.subscribe(lambda kind, payload: alarms.append(payload) if kind == "alarm" else None)
    return gate, db, alarms


def _care_passes(gate: Gate, n: int = 3) -> None:
    passes = 0

    def enough() -> bool:  # the care watch runs in the first pass, then is forced again
        nonlocal passes
        passes += 1
        gate._last_care_check = float("-inf")
        return passes > n
    run_until(gate, enough)


def test_care_watch_alarms_once_for_a_resident_not_seen_for_too_long(prepared: Path, tmp_path: Path) -> None:
    gate, db, seen = _care_gate(prepared, tmp_path)
    _care_passes(gate)
    care = [a for a in seen if a["kind"] == "care_watch"]
    assert [a["person_id"] for a in care] == ["R002"], care  # once, and not for R004 (seen 20 min ago)
    assert "Li Na (B2-301) has not passed a gate for over 2 h" in str(care[0]["message"])
    with Store.open(db) as store:
        stored = store.alarms(kind="care_watch")
    assert [a.person_id for a in stored] == ["R002"]


def test_care_watch_is_left_to_a_fresh_hub_and_taken_back_when_it_goes(prepared: Path, tmp_path: Path) -> None:
    gate, _db, seen = _care_gate(prepared, tmp_path)
    hub = HubState.model_validate({"schema": HUB_STATE_SCHEMA, "community": "c", "ts": datetime.now(UTC),
                                   "version": 3, "care_watch": True, "interval_s": 30.0,
                                   "signature": {"alg": "ed25519", "key_id": "0" * 16, "value": ""}})
    gate._hub_state(hub)  # as the intake hands it on once its signature verified
    passes = 0
    quiet: list[object] = []

    def script() -> bool:
        nonlocal passes
        passes += 1
        gate._last_care_check = float("-inf")
        if passes == 4:  # three care checks with a fresh hub: the hub raises it, once for the community
            quiet.extend(a for a in seen if a["kind"] == "care_watch")
            gate._hub_state(None)  # the hub's last will cleared its state: this gate takes the watch back
        return passes > 6
    run_until(gate, script)
    assert quiet == []
    assert [a["person_id"] for a in seen if a["kind"] == "care_watch"] == ["R002"]
