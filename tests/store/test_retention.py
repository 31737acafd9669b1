"""Retention on a real store: delivered events, face crops and passages older than their retention go;
undelivered events, each person's latest passage and what anti-passback still needs stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.config.gate import StoreSection
from edge.store import AlarmRecord, EventRecord, Passage, PersonRecord, Store
from edge.store.retention import purge_expired

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "gate.db", snapshots=True)
    for pid in ("R1", "R2"):
        store.upsert_person(PersonRecord(id=pid, name=pid))
    return store


def test_old_passages_are_purged_but_each_persons_latest_stays(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        for days in (90, 60, 40):
            store.record_passage(Passage("R1", NOW - timedelta(days=days), "north", "in"))
        store.record_passage(Passage("R1", NOW - timedelta(days=1), "north", "in"))
        store.record_passage(Passage("R2", NOW - timedelta(days=100), "north", "in"))  # R2's only one
        done = purge_expired(store, StoreSection(retention_days=30), now=NOW)
        left = {(p.person_id, (NOW - p.ts).days) for p in store.recent_passages(None, NOW - timedelta(days=365))}
    assert done.passages == 3
    assert left == {("R1", 1), ("R2", 100)}


def test_passages_anti_passback_needs_outlive_a_shorter_retention(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.record_passage(Passage("R1", NOW - timedelta(hours=20), "north", "in"))
        store.record_passage(Passage("R1", NOW - timedelta(hours=2), "north", "in"))
        tiny = StoreSection(retention_days=0.01)  # about 15 minutes
        assert purge_expired(store, tiny, anti_passback_s=86400, now=NOW).passages == 0
        assert purge_expired(store, tiny, anti_passback_s=3600, now=NOW).passages == 1


def test_delivered_events_and_old_crops_go_undelivered_events_stay(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        old = NOW - timedelta(days=40)
        delivered = EventRecord(ts=old, gate_id="north", direction="in", decision="deny", person_id=None)
        pending = EventRecord(ts=old, gate_id="north", direction="in", decision="deny", person_id=None)
        store.record_event(delivered)
        store.record_event(pending)
        store.ack_outbox([r.seq for r in store.pending_outbox(10) if r.event_id == delivered.event_id])
        done = purge_expired(store, StoreSection(retention_days=30), now=NOW)
        kept = [e.event_id for e in store.events(limit=10)]
    assert done.events == 1 and kept == [pending.event_id]


def test_alarms_go_by_age_and_beyond_the_row_ceiling(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        for i in range(5):  # each its own source
            store.record_alarm(AlarmRecord(ts=NOW - timedelta(days=100 - i), kind="door_held", severity="warning",
                                           message="held", person_id=f"R{i}"))
        recent = [store.record_alarm(AlarmRecord(ts=NOW - timedelta(hours=i), kind="door_held", severity="warning",
                                                 message="held", person_id=f"N{i}")) for i in range(150)]
        done = purge_expired(store, StoreSection(alarm_retention_days=90, alarm_max_rows=100), now=NOW)
        left = {a.id for a in store.alarms(limit=1000)}
    assert done.alarms == 5 + 50  # five too old, then the fifty oldest beyond the ceiling
    assert left == set(recent[:100])
