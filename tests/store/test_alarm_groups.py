"""Alarm grouping on a real store (an SQLite file): repeats of one source while unacknowledged are one
row with a count; other sources, an acknowledgement or a quiet window start new rows; the outbox gets
one row per group and at most one update per window; retention bounds the rows."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.protocol.payloads import AlarmMessage
from edge.protocol.signing import SigningKey, verify
from edge.store import AlarmRecord, Store
from edge.store.migrations import MIGRATIONS, migrate
from edge.sync.identity import seal_row

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
KEY = SigningKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "gate.db")
    s.configure_alarms(WINDOW, 10_000)
    return s


def rejected(i: int, *, topic: str = "edge-gate/c/whitelist/delta", code: str = "malformed_json",
             ts: datetime | None = None, count: int = 1, severity: str = "warning") -> AlarmRecord:
    return AlarmRecord(ts=ts or T0 + timedelta(milliseconds=500 * i), kind="whitelist_rejected",
                       severity=severity, message=f"whitelist push rejected ({code}) #{i}", gate_id="north-1",
                       count=count, details={"code": code, "topic": topic, "version": i, "rejected_since_last": 1})


def alarm_rows(store: Store) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in store.pending_outbox(10_000) if r.topic_kind == "alarm"]


def test_a_thousand_repeats_of_one_source_are_one_row_counting_them(store: Store) -> None:
    ids = {store.record_alarm(rejected(i)) for i in range(1000)}  # one every 0.5 s: 500 s, inside the window
    (group,) = store.alarms(limit=10_000)
    first = rejected(0)
    assert ids == {group.id} and group.count == 1000
    assert group.ts == first.ts and group.last_seen == rejected(999).ts
    assert group.message.endswith("#999") and group.details["version"] == 999  # the latest
    assert store.alarm_rows() == 1
    # the broker got the first at once, and no update yet: the window has not passed since
    (sent,) = alarm_rows(store)
    assert sent["id"] == group.id and "count" not in sent
    assert store.flush_alarm_groups(now=T0 + WINDOW - timedelta(seconds=1)) == 0
    assert store.flush_alarm_groups(now=T0 + WINDOW) == 1
    (update,) = alarm_rows(store)  # the unsent first row was replaced by the group's state
    assert update["id"] == group.id and update["count"] == 1000 and update["last_seen"] == "2026-06-01T12:08:19.500000Z"
    doc = json.loads(seal_row(KEY, json.dumps(update)))
    verify(doc, [KEY.public])
    assert AlarmMessage.model_validate(doc).count == 1000  # the closed schema takes it
    assert store.flush_alarm_groups(now=T0 + 3 * WINDOW) == 0  # nothing grew since: nothing to send


def test_a_long_flood_sends_at_most_one_update_per_window(store: Store) -> None:
    sent: list[dict[str, object]] = []
    for i in range(3600):  # an hour, one a second: still one group, its gaps are all under the window
        store.record_alarm(rejected(0, ts=T0 + timedelta(seconds=i)))
        for row in store.pending_outbox(100):
            sent.append(json.loads(row.payload))
            store.ack_outbox([row.seq])
    (group,) = store.alarms()
    assert group.count == 3600
    assert [s.get("count", 1) for s in sent] == [1, 601, 1201, 1801, 2401, 3001]  # the first, then every 10 min
    assert {s["id"] for s in sent} == {group.id}


def test_other_sources_are_other_rows(store: Store) -> None:
    store.record_alarm(rejected(0))
    store.record_alarm(rejected(1))  # same topic and code, another version: the same source
    store.record_alarm(rejected(2, code="bad_signature"))
    store.record_alarm(rejected(3, topic="edge-gate/c/north-1/whitelist/delta"))
    store.record_alarm(AlarmRecord(ts=T0, kind="stranger", severity="warning", message="x", gate_id="north-1"))
    store.record_alarm(AlarmRecord(ts=T0, kind="stranger", severity="warning", message="x", gate_id="south-2"))
    for person in ("R1", "R2", "R2"):
        store.record_alarm(AlarmRecord(ts=T0, kind="fever", severity="high", message="x", gate_id="north-1",
                                       person_id=person))
    counts = sorted((a.kind, a.gate_id, a.person_id, a.details.get("code"), a.count) for a in store.alarms())
    assert counts == [("fever", "north-1", "R1", None, 1), ("fever", "north-1", "R2", None, 2),
                      ("stranger", "north-1", None, None, 1), ("stranger", "south-2", None, None, 1),
                      ("whitelist_rejected", "north-1", None, "bad_signature", 1),
                      ("whitelist_rejected", "north-1", None, "malformed_json", 1),
                      ("whitelist_rejected", "north-1", None, "malformed_json", 2)]
    assert len(alarm_rows(store)) == 7  # each new group went out at once


def test_an_acknowledged_group_is_closed_and_a_quiet_window_ends_one(store: Store) -> None:
    first = store.record_alarm(rejected(0))
    store.record_alarm(rejected(1))
    assert store.acknowledge_alarm(first, "guard-ann", T0 + timedelta(seconds=2))
    second = store.record_alarm(rejected(2))
    assert second != first
    store.record_alarm(rejected(3))
    third = store.record_alarm(rejected(4, ts=rejected(3).ts + WINDOW + timedelta(seconds=1)))  # quiet too long
    by_id = {a.id: a for a in store.alarms()}
    assert set(by_id) == {first, second, third}
    assert (by_id[first].count, by_id[first].acknowledged_by) == (2, "guard-ann")
    assert (by_id[second].count, by_id[third].count) == (2, 1)
    assert [a.id for a in store.alarms()] == [third, second, first]  # the most recently seen first
    assert [a.id for a in store.alarms(unacknowledged=True)] == [third, second]


def test_a_group_keeps_its_highest_severity_and_adds_held_back_counts(store: Store) -> None:
    def fault(seconds: int, severity: str, message: str, count: int = 1) -> AlarmRecord:
        return AlarmRecord(ts=T0 + timedelta(seconds=seconds), kind="sensor_fault", severity=severity,
                           message=message, gate_id="north-1", count=count,
                           details={"code": "sensor_fault", "fault": "no_reading"})

    gid = store.record_alarm(fault(0, "high", "first"))
    store.record_alarm(fault(5, "warning", "later", count=40))  # a source that held 39 back
    group = store.get_alarm(gid)
    assert group is not None and (group.severity, group.message, group.count) == ("high", "later", 41)
    assert group.to_dict()["count"] == 41 and group.to_dict()["last_seen"] == "2026-06-01T12:00:05.000000Z"


def test_no_grouping_when_the_window_is_zero(store: Store) -> None:
    store.configure_alarms(timedelta(0), 10_000)
    for i in range(5):
        store.record_alarm(rejected(i))
    assert [a.count for a in store.alarms()] == [1] * 5 and len(alarm_rows(store)) == 5


def test_rows_of_a_version_1_store_are_single_alarms(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])
    conn.execute("INSERT INTO alarms (id, ts, kind, severity, message, details) VALUES "
                 "('A1', '2026-06-01T12:00:00.000000Z', 'stranger', 'warning', 'x', '{}')")
    conn.close()
    with Store.open(path) as s:
        (old,) = s.alarms()
        assert (old.id, old.count, old.seen) == ("A1", 1, T0) and "count" not in old.to_dict()
        new = s.record_alarm(AlarmRecord(ts=T0 + timedelta(seconds=1), kind="stranger", severity="warning",
                                         message="y"))
        assert new != "A1" and s.alarm_rows() == 2  # an old row (no source recorded) starts no group


def test_retention_purges_by_age_and_caps_rows_acknowledged_first(store: Store,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def raise_(i: int, severity: str, days: float = 0) -> str:
        return store.record_alarm(AlarmRecord(ts=T0 - timedelta(days=days), kind="door_forced", severity=severity,
                                              message=str(i), gate_id="north-1", person_id=f"p{i}"))

    old_acked, old_open = raise_(0, "info", days=100), raise_(1, "high", days=100)
    store.acknowledge_alarm(old_acked, "guard-ann", T0)
    with caplog.at_level(logging.WARNING, logger="edge.store"):
        assert store.purge_alarms(timedelta(days=90), now=T0) == 2
    assert any("1 unacknowledged high/critical" in r.message and old_open in r.message for r in caplog.records)

    store.configure_alarms(WINDOW, 5)
    acked = [raise_(10 + i, "critical", days=1) for i in range(3)]
    for a in acked:
        store.acknowledge_alarm(a, "guard-ann", T0)
    high = raise_(20, "high", days=2)  # the oldest, but unacknowledged and high
    info = raise_(21, "info", days=0.5)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.store"):
        keep = [raise_(30 + i, "warning") for i in range(3)]  # the ceiling is held as rows are written
    left = {a.id for a in store.alarms(limit=100)}
    assert store.alarm_rows() == 5 and left == {high, info, *keep}  # the acknowledged ones went first
    assert not any("high/critical" in r.message for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="edge.store"):
        raise_(40, "warning")
    assert info not in {a.id for a in store.alarms(limit=100)}  # then the lowest severity
    assert any("1 unacknowledged info/warning alarm(s) deleted" in r.message for r in caplog.records)
    store.configure_alarms(WINDOW, 2)
    with caplog.at_level(logging.WARNING, logger="edge.store"):
        assert store.cap_alarms() == 3
    assert high in {a.id for a in store.alarms()}  # the high one is the last to go
    assert store.alarm_rows() == 2


def test_a_high_severity_repeat_goes_out_at_once(store: Store) -> None:
    def fever(seconds: int, value: float) -> AlarmRecord:
        return AlarmRecord(ts=T0 + timedelta(seconds=seconds), kind="fever", severity="high",
                           message=f"fever {value} C", gate_id="north-1", details={"value_c": value})

    gid = store.record_alarm(fever(0, 38.4))
    for row in store.pending_outbox(100):
        store.ack_outbox([row.seq])  # the first went out
    assert store.record_alarm(fever(30, 39.1)) == gid  # a second fever 30 s later: counted on the group ...
    (update,) = alarm_rows(store)  # ... and sent now, not a window later
    assert update["id"] == gid and update["count"] == 2 and update["details"]["value_c"] == 39.1
    # a warning repeat that raises nothing waits for the window as before
    store.record_alarm(rejected(0))
    for row in store.pending_outbox(100):
        store.ack_outbox([row.seq])
    store.record_alarm(rejected(1))
    assert alarm_rows(store) == []
    # a repeat that raises the group's severity goes at once too
    low = AlarmRecord(ts=T0, kind="sensor_fault", severity="warning", message="stale", gate_id="north-1",
                      details={"code": "sensor_fault", "fault": "stale"})
    store.record_alarm(low)
    for row in store.pending_outbox(100):
        store.ack_outbox([row.seq])
    worse = AlarmRecord(ts=T0 + timedelta(seconds=5), kind="sensor_fault", severity="critical", message="gone",
                        gate_id="north-1", details={"code": "sensor_fault", "fault": "stale"})
    store.record_alarm(worse)
    (raised,) = alarm_rows(store)
    assert raised["severity"] == "critical" and raised["count"] == 2


def test_a_flood_of_high_severity_forged_pushes_still_waits_for_the_window(store: Store) -> None:
    for i in range(200):  # bad signatures are high, but anyone can send them: grouped as before
        store.record_alarm(rejected(i, code="bad_signature", severity="high"))
    assert len(alarm_rows(store)) == 1  # the first only
