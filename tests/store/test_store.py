"""The local store on real SQLite files: schema and migrations, records, the event+outbox transaction,
retention, a full disk, the writer thread, and a writer killed with SIGKILL; plus the ULID event ids."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge import ids
from edge.store import (
    AlarmRecord,
    EventRecord,
    Passage,
    PersonRecord,
    SchemaTooNewError,
    Store,
    StoreError,
    StoreFullError,
    StoreWriteError,
    WeeklySchedule,
)
from edge.store.migrations import MIGRATIONS, migrate, schema_version
from edge.store.writer import StoreWriter

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # a Monday
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "data" / "gate.db")
    yield s
    s.close()


def person(pid: str = "p1", **kw: object) -> PersonRecord:
    kw.setdefault("name", f"Person {pid}")
    kw.setdefault("updated_at", T0)
    return PersonRecord(id=pid, **kw)  # type: ignore[arg-type]


def event(i: int = 0, **kw: object) -> EventRecord:
    kw.setdefault("ts", T0 + timedelta(seconds=i))
    kw.setdefault("gate_id", "gate-1")
    kw.setdefault("direction", "in")
    kw.setdefault("decision", "deny")
    kw.setdefault("reasons", ({"code": "unknown_face", "params": {"score": 0.1}},))
    return EventRecord(**kw)  # type: ignore[arg-type]


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


# ---------------------------------------------------------------------------------------------- ids


def test_ulids_are_unique_and_sort_by_creation_across_100k() -> None:
    before = datetime.now(UTC)
    made = [ids.new_event_id() for _ in range(100_000)]
    after = datetime.now(UTC)
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(len(u) == 26 and set(u) <= set(ids.ALPHABET) for u in made[:1000])
    first, last = ids.timestamp(made[0]), ids.timestamp(made[-1])
    assert before - timedelta(milliseconds=1) <= first <= last <= after


def test_ulid_generator_monotonic_within_a_millisecond_and_when_the_clock_steps_back() -> None:
    clock = iter([1000, 1000, 1000, 999, 1001])
    gen = ids.UlidGenerator(clock_ms=lambda: next(clock), randbits=lambda: 5)
    a, b, c, d, e = (gen() for _ in range(5))
    assert a < b < c < d < e
    assert [ids.decode(x) & ((1 << 80) - 1) for x in (a, b, c, d)] == [5, 6, 7, 8]
    assert ids.timestamp(d) == datetime.fromtimestamp(1.0, tz=UTC)  # kept the later millisecond
    assert ids.timestamp(e) == datetime.fromtimestamp(1.001, tz=UTC)


def test_ulid_random_overflow_borrows_the_next_millisecond() -> None:
    gen = ids.UlidGenerator(clock_ms=lambda: 7, randbits=lambda: (1 << 80) - 1)
    a, b = gen(), gen()
    assert a < b and ids.decode(b) == 8 << 80


def test_ulid_encode_decode_round_trip_and_rejects() -> None:
    for value in (0, 1, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF):
        assert ids.decode(ids.encode(value)) == value
    assert ids.decode(ids.encode(12345).lower()) == 12345
    for bad in ("", "0" * 25, "U" * 26, "8" + "0" * 25):
        with pytest.raises(ValueError):
            ids.decode(bad)


# --------------------------------------------------------------------------------- open, migrations


def test_open_creates_directory_wal_full_sync_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "gate.db"
    with Store.open(path) as s:
        assert path.exists()
        conn = s._wconn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert s.integrity_check() == "ok"
    tables = {r[0] for r in raw(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"persons", "templates", "events", "outbox", "alarms", "audit", "guards", "passages", "meta",
            "snapshots", "schema_version"} <= tables


def test_reopen_is_a_no_op_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with Store.open(path) as s:
        s.upsert_person(person())
        s.record_event(event())
    schema_before = raw(path).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    with Store.open(path) as s:
        assert s.get_person("p1") == person()
        assert len(s.events()) == 1
    conn = raw(path)
    assert conn.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0] == schema_before
    assert [tuple(r) for r in conn.execute("SELECT version FROM schema_version")] == [(len(MIGRATIONS),)]


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with Store.open(path) as s:
        s.upsert_person(person())
    conn = raw(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError, match="99 is newer"):
        Store.open(path)
    conn = raw(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 99
    assert conn.execute("SELECT name FROM persons").fetchone()[0] == "Person p1"


def test_a_later_migration_upgrades_in_place_and_a_failing_one_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with Store.open(path) as s:
        s.upsert_person(person())

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE persons ADD COLUMN phone TEXT")
        conn.execute("UPDATE persons SET phone = '112'")

    def v3_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, (*MIGRATIONS, v2)) == len(MIGRATIONS) + 1
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, (*MIGRATIONS, v2, v3_broken))
    assert schema_version(conn) == len(MIGRATIONS) + 1
    assert conn.execute("SELECT name, phone FROM persons").fetchall() == [("Person p1", "112")]
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    conn.close()


def test_a_file_that_is_not_a_database_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    junk = b"this is a text file, not sqlite " * 200
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="cannot open"):
        Store.open(path)
    assert path.read_bytes() == junk


# ------------------------------------------------------------------------------------------ persons


def test_person_round_trip_with_every_field(store: Store) -> None:
    p = PersonRecord(
        id="v-42", name="Eva Nováková", kind="visitor", status="suspended",
        valid_from=datetime(2025, 1, 1, 1, 0, tzinfo=UTC),
        valid_until="2025-02-01T10:00:00+01:00",  # type: ignore[arg-type]  # text is parsed
        max_uses=3, uses=1, allowed_gates=("north", "south"), directions=("in",),
        schedule={"mon": [["07:00", "22:00"]], "sat": [["22:00", "02:00"]]},  # type: ignore[arg-type]
        care_watch_hours=12, unit="B 12", updated_at=T0)
    store.upsert_person(p)
    got = store.get_person("v-42")
    assert got == p
    assert got is not None and got.valid_until == datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
    assert isinstance(got.schedule, WeeklySchedule) and got.care_watch_hours == 12.0
    assert PersonRecord.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    store.upsert_person(person("v-42", name="Eva N."))
    got = store.get_person("v-42")
    assert got is not None and got.name == "Eva N." and got.schedule is None and got.kind == "resident"
    assert store.count_persons() == 1
    assert store.get_person("nobody") is None


@pytest.mark.parametrize("kw, match", [
    ({"kind": "alien"}, "kind"),
    ({"status": "gone"}, "status"),
    ({"valid_from": datetime(2025, 1, 1)}, "timezone-aware"),
    ({"valid_until": "yesterday"}, "ISO-8601"),
    ({"valid_from": T0, "valid_until": T0}, "after valid_from"),
    ({"max_uses": -1}, "max_uses"),
    ({"uses": 1.5}, "uses"),
    ({"directions": ("up",)}, "directions"),
    ({"allowed_gates": "north"}, "allowed_gates"),
    ({"schedule": {"mon": [["07:00", "25:00"]]}}, "HH:MM"),
    ({"schedule": {"monday": []}}, "unknown schedule days"),
    ({"schedule": {"mon": [["07:00", "07:00"]]}}, "invalid time window"),
    ({"care_watch_hours": 0}, "care_watch_hours"),
    ({"care_watch_hours": float("nan")}, "care_watch_hours"),
    ({"unit": "x" * 65}, "unit"),
    ({"name": None}, "name"),
])
def test_invalid_person_fields_are_refused(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        person(**kw)


def test_person_from_dict_refuses_unknown_keys_and_bad_ids() -> None:
    with pytest.raises(ValueError, match="unknown person fields: colour"):
        PersonRecord.from_dict({"id": "a", "name": "A", "colour": "red"})
    with pytest.raises(ValueError, match="person id"):
        PersonRecord.from_dict({"id": "a b/../", "name": "A"})
    with pytest.raises(ValueError, match="needs an id"):
        PersonRecord.from_dict({"name": "A"})
    with pytest.raises(ValueError, match="JSON object"):
        PersonRecord.from_dict(["a"])  # type: ignore[arg-type]


def test_weekly_schedule_windows_including_past_midnight() -> None:
    s = WeeklySchedule.from_json({"mon": [["07:00", "09:30"], ["17:00", "24:00"]],
                                  "fri": [["22:00", "06:00"]]})
    mon = datetime(2025, 3, 3)
    assert not s.allows(mon.replace(hour=6, minute=59))
    assert s.allows(mon.replace(hour=7))
    assert s.allows(mon.replace(hour=9, minute=29))
    assert not s.allows(mon.replace(hour=9, minute=30))
    assert s.allows(mon.replace(hour=23, minute=59))
    assert not s.allows(mon.replace(day=4, hour=0, minute=0))  # Tuesday: none
    assert s.allows(datetime(2025, 3, 7, 23, 0))  # Friday night
    assert s.allows(datetime(2025, 3, 8, 5, 59))  # Saturday morning: Friday's window
    assert not s.allows(datetime(2025, 3, 8, 6, 0))
    assert not s.allows(datetime(2025, 3, 7, 5, 0))  # Friday morning: Thursday had no window
    assert WeeklySchedule.from_json(s.to_json()) == s


def test_list_persons_search_paging_and_like_escaping(store: Store) -> None:
    for i, name in enumerate(["Zoe", "adam", "Bob", "100% Real", "under_score"]):
        store.upsert_person(person(f"p{i}", name=name, unit=f"A{i}"))
    assert [p.name for p in store.list_persons()] == ["100% Real", "adam", "Bob", "under_score", "Zoe"]
    assert [p.name for p in store.list_persons(limit=2, offset=1)] == ["adam", "Bob"]
    assert [p.name for p in store.list_persons("AD")] == ["adam"]
    assert [p.name for p in store.list_persons("%")] == ["100% Real"]
    assert [p.name for p in store.list_persons("_")] == ["under_score"]
    assert [p.id for p in store.list_persons("a2")] == ["p2"]  # unit
    assert store.list_persons(limit=-5) and store.list_persons(offset=10) == []


def test_delete_person_purges_biometrics_and_passages_but_keeps_the_access_log(tmp_path: Path) -> None:
    with Store.open(tmp_path / "gate.db", snapshots=True) as s:
        s.upsert_person(person("p1"))
        s.upsert_person(person("p2"))
        s.add_templates("p1", np.ones((2, 4), np.float32), "m")
        s.add_templates("p2", np.ones((1, 4), np.float32), "m")
        ev = s.record_event(event(decision="grant", person_id="p1"))
        other = s.record_event(event(1, decision="grant", person_id="p2"))
        assert s.add_snapshot(ev, b"\xff\xd8\xff\xe0face") and s.add_snapshot(other, b"\xff\xd8\xff\xe0two")
        assert s.delete_person("p1") is True
        assert s.delete_person("p1") is False
        assert s.get_person("p1") is None
        assert s.load_templates("m")[0] == ["p2"]
        assert s.get_snapshot(ev) is None and s.get_snapshot(other) == b"\xff\xd8\xff\xe0two"
        assert "p1" not in s.last_seen() and "p2" in s.last_seen()
        assert s.get_event(ev) is not None  # the access log stays
        assert s.integrity_check() == "ok"


def test_malformed_row_from_a_hand_edited_database_is_skipped_not_fatal(store: Store) -> None:
    store.upsert_person(person("good"))
    store.upsert_person(person("bad"))
    conn = raw(store.path)
    conn.execute("""UPDATE persons SET schedule = '{"someday": 1}' WHERE id = 'bad'""")
    conn.commit()
    assert [p.id for p in store.list_persons()] == ["good"]
    assert store.get_person("bad") is None
    assert conn.execute("SELECT count(*) FROM persons").fetchone()[0] == 2  # nothing was deleted


# ---------------------------------------------------------------------------------------- templates


def test_templates_round_trip_grouped_by_person(store: Store) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 128)).astype(np.float32), rng.standard_normal((2, 128)).astype(np.float32)
    for pid in ("zed", "amy"):
        store.upsert_person(person(pid))
    assert store.add_templates("zed", a[:2], "sface") == 2
    assert store.add_templates("amy", b, "sface") == 2
    assert store.add_templates("zed", a[2], "sface") == 1  # one vector
    store.add_templates("amy", rng.standard_normal((1, 512)), "arcface")  # float64 in, float32 out
    person_ids, matrix = store.load_templates("sface")
    assert person_ids == ["amy", "amy", "zed", "zed", "zed"]
    assert matrix.dtype == np.float32 and matrix.shape == (5, 128)
    np.testing.assert_array_equal(matrix, np.vstack([b, a]))
    assert store.load_templates("arcface")[1].shape == (1, 512)
    assert store.load_templates("none")[1].shape == (0, 0)
    assert store.count_templates() == 6 and store.count_templates("sface") == 5


def test_bad_templates_are_refused_and_nothing_is_written(store: Store) -> None:
    store.upsert_person(person())
    store.add_templates("p1", np.ones((1, 8), np.float32), "m")
    bad: list[Any] = [np.full((2, 8), np.nan, np.float32), np.ones((1, 9)), np.ones((0, 8)),
                      np.ones((2, 2, 2)), np.array([["a", "b"]]), np.ones((1, 5000))]
    for arr in bad:
        with pytest.raises(ValueError):
            store.add_templates("p1", arr, "m")
    with pytest.raises(StoreError, match="no person"):
        store.add_templates("ghost", np.ones((1, 8)), "m")
    assert store.count_templates() == 1


def test_replace_templates_is_atomic(store: Store) -> None:
    store.upsert_person(person())
    store.add_templates("p1", np.ones((2, 4)), "m")
    with pytest.raises(ValueError):
        store.replace_templates("p1", np.full((1, 4), np.inf), "m")
    assert store.count_templates() == 2
    assert store.replace_templates("p1", np.zeros((1, 4)), "m") == 1
    np.testing.assert_array_equal(store.load_templates("m")[1], np.zeros((1, 4), np.float32))


# --------------------------------------------------------------------------------- events and outbox


def test_event_and_its_outbox_row_are_written_together(store: Store) -> None:
    ev = event(scores={"score": np.float32(0.25), "margin": float("nan")},
               temperature={"value_c": 36.6, "age_s": np.float64(0.5)})
    assert store.record_event(ev) == ev.event_id
    (got,) = store.events()
    assert got.event_id == ev.event_id and got.scores == {"score": 0.25, "margin": None}
    assert got.temperature == {"value_c": 36.6, "age_s": 0.5} and got.ts == ev.ts and not got.synced
    (row,) = store.pending_outbox(10)
    payload = json.loads(row.payload)
    assert row.topic_kind == "event" and row.event_id == ev.event_id
    assert payload["schema"] == "edge-gate/event/2" and payload["event_id"] == ev.event_id
    assert payload["reasons"] == [{"code": "unknown_face", "params": {"score": 0.1}}]


def test_a_failed_event_write_leaves_neither_event_nor_outbox_row(store: Store) -> None:
    first = event()
    store.record_event(first)
    with pytest.raises(StoreError, match="refused"):
        store.record_event(event(5, event_id=first.event_id))  # duplicate id
    alarm = AlarmRecord(ts=T0, kind="stranger", severity="warning", message="x")
    store.record_alarm(alarm)
    with pytest.raises(StoreError):  # the second alarm collides: the whole event is rolled back
        store.record_event(event(6), alarms=[AlarmRecord(ts=T0, kind="fever", severity="high", message="y"),
                                             alarm])
    assert [e.event_id for e in store.events()] == [first.event_id]
    assert store.outbox_depth() == 2 and len(store.alarms()) == 1


def test_invalid_events_are_refused_before_touching_the_store() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        event(ts=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="decision"):
        event(decision="maybe")
    with pytest.raises(ValueError, match="direction"):
        event(direction="sideways")
    with pytest.raises(ValueError, match="cannot store"):
        event(scores={"x": object()})
    with pytest.raises(ValueError, match="must be a list"):
        event(reasons="unknown")


def test_grant_records_a_passage_and_counts_a_use(store: Store) -> None:
    store.upsert_person(person("v1", kind="visitor", max_uses=2))
    store.record_event(event(decision="grant", person_id="v1"))
    store.record_event(event(1, decision="deny", person_id="v1"))
    store.record_event(event(2, decision="grant", person_id="v1", direction="out"), passage=False)
    p = store.get_person("v1")
    assert p is not None and p.uses == 1
    assert store.recent_passages("v1", T0 - timedelta(hours=1)) == [Passage("v1", T0, "gate-1", "in")]


def test_alarms_with_events_outbox_ack_and_last_alarm_times(store: Store) -> None:
    a1 = AlarmRecord(ts=T0, kind="care", severity="warning", message="m", person_id="p1", details={"h": 1})
    a2 = AlarmRecord(ts=T0 + timedelta(hours=2), kind="care", severity="warning", message="m", person_id="p1")
    fever = AlarmRecord(ts=T0, kind="fever", severity="high", message="fever 38.4 C", gate_id="gate-1")
    store.record_alarm(a1)
    store.record_alarm(a2)
    ev = store.record_event(event(decision="deny"), alarms=[fever])
    assert [a.id for a in store.alarms()] == [a2.id, fever.id, a1.id]  # newest first, then by id
    assert store.last_alarm_times("care") == {"p1": a2.ts}
    kinds = [(r.topic_kind, r.event_id) for r in store.pending_outbox(10)]
    assert kinds == [("alarm", a1.id), ("alarm", a2.id), ("event", ev), ("alarm", fever.id)]
    assert store.acknowledge_alarm(fever.id, "guard-ann", T0) is True
    assert store.acknowledge_alarm(fever.id, "guard-bob", T0) is False  # first acknowledgement stays
    assert [a.id for a in store.alarms(unacknowledged=True, kind="fever")] == []
    got = store.alarms(kind="fever")[0]
    assert got.acknowledged_by == "guard-ann" and got.acknowledged_at == T0
    with pytest.raises(ValueError, match="severity"):
        AlarmRecord(ts=T0, kind="x", severity="meh", message="")


def test_outbox_order_ack_marks_synced_and_depth(store: Store) -> None:
    evs = [store.record_event(event(i)) for i in range(5)]
    rows = store.pending_outbox(3)
    assert [r.event_id for r in rows] == evs[:3] and [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert store.ack_outbox([rows[0].seq, rows[2].seq, 999_999]) == 2
    assert store.outbox_depth() == 3
    assert [r.event_id for r in store.pending_outbox(10)] == [evs[1], evs[3], evs[4]]
    assert {e.event_id: e.synced for e in store.events()} == {e: e in (evs[0], evs[2]) for e in evs}
    assert store.ack_outbox([]) == 0


def test_event_queries(store: Store) -> None:
    for i in range(10):
        store.record_event(event(i * 60, decision="grant" if i % 2 else "deny",
                                 person_id="p1" if i % 3 == 0 else None))
    assert len(store.events()) == 10
    since = store.events(since=T0 + timedelta(minutes=5))
    assert [e.ts for e in since] == [T0 + timedelta(minutes=m) for m in range(5, 10)]
    assert len(store.events(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))) == 2
    assert [e.ts.minute for e in store.events(person_id="p1")] == [0, 3, 6, 9]
    assert all(e.decision == "grant" for e in store.events(decision="grant"))
    assert [e.ts.minute for e in store.events(limit=3, offset=2, newest_first=True)] == [7, 6, 5]


def test_retention_never_deletes_unsynced_events_and_drops_their_snapshots(tmp_path: Path) -> None:
    now = T0 + timedelta(days=40)
    with Store.open(tmp_path / "gate.db", snapshots=True) as s:
        old = [s.record_event(event(i)) for i in range(4)]
        fresh = s.record_event(event(ts=now - timedelta(days=1)))
        for e in [*old, fresh]:
            assert s.add_snapshot(e, b"\xff\xd8\xff" + e.encode())
        s.ack_outbox([r.seq for r in s.pending_outbox(10) if r.event_id in (old[0], old[1], fresh)])
        assert s.purge_synced_events(timedelta(days=30), now=now) == 2
        assert {e.event_id for e in s.events()} == {old[2], old[3], fresh}
        assert s.get_snapshot(old[0]) is None and s.get_snapshot(old[2]) is not None
        assert s.purge_snapshots(timedelta(days=7), now=datetime.now(UTC) + timedelta(days=8)) == 3
        assert s.get_snapshot(fresh) is None
        assert s.integrity_check() == "ok"


def test_snapshots_are_off_by_default_and_only_jpegs_are_kept(tmp_path: Path, store: Store) -> None:
    ev = store.record_event(event())
    assert store.add_snapshot(ev, b"\xff\xd8\xff\xe0") is False
    assert store.get_snapshot(ev) is None
    with Store.open(tmp_path / "snap.db", snapshots=True) as s:
        ev = s.record_event(event())
        assert s.add_snapshot(ev, b"\x89PNG\r\n") is False
        assert s.add_snapshot(ev, "not bytes") is False  # type: ignore[arg-type]
        assert s.add_snapshot(ev, b"\xff\xd8\xff\xdb") is True
        assert s.get_snapshot(ev) == b"\xff\xd8\xff\xdb"


# --------------------------------------------------------------------------- passages, meta, guards


def test_passages_last_seen_and_purge_keeps_the_latest(store: Store) -> None:
    assert store.record_passage(Passage("p1", T0, "north", "in")) is True
    assert store.record_passage(Passage("p1", T0, "north", "in")) is False  # a peer resending
    store.record_passage(Passage("p1", T0 + timedelta(hours=1), "south", "out"))
    store.record_passage(Passage("p2", T0 - timedelta(days=60), "north", "in"))
    assert store.last_seen() == {"p1": T0 + timedelta(hours=1), "p2": T0 - timedelta(days=60)}
    assert store.purge_passages(timedelta(days=1), now=T0 + timedelta(days=30)) == 1
    assert store.last_seen() == {"p1": T0 + timedelta(hours=1), "p2": T0 - timedelta(days=60)}
    assert [p.gate_id for p in store.recent_passages("p1", T0)] == ["south"]


def test_meta_audit_and_guards(store: Store) -> None:
    assert store.get_meta("whitelist_version") is None
    store.set_meta("whitelist_version", "7")
    store.set_meta("whitelist_version", "8")
    assert store.get_meta("whitelist_version") == "8"
    store.audit("guard-ann", "manual_open", {"reason": "delivery"}, ts=T0)
    store.audit("system", "config_change", None, ts=T0 + timedelta(seconds=1))
    entries = store.audit_entries()
    assert [(e.actor, e.action, e.details) for e in entries] == [
        ("system", "config_change", {}), ("guard-ann", "manual_open", {"reason": "delivery"})]
    with pytest.raises(ValueError):
        store.audit("", "x", {})
    store.add_guard("ann", "operator", "$argon2id$hash")
    store.add_guard("bob", "viewer", "$argon2id$hash2")
    with pytest.raises(StoreError, match="exists"):
        store.add_guard("ann", "viewer", "h")
    with pytest.raises(ValueError, match="role"):
        store.add_guard("eve", "admin", "h")  # type: ignore[arg-type]
    assert store.set_guard_disabled("bob", True) and not store.set_guard_disabled("nobody", True)
    ann, bob = store.list_guards()
    assert (ann.name, ann.role, ann.disabled, bob.disabled) == ("ann", "operator", False, True)
    assert store.get_guard("ann") == ann and store.get_guard("eve") is None


def test_apply_in_transaction_is_all_or_nothing_and_sees_its_own_writes(store: Store) -> None:
    def push(s: Store) -> None:
        s.upsert_person(person("a"))
        s.upsert_person(person("b"))
        assert s.get_person("a") is not None  # visible inside the transaction
        s.set_meta("whitelist_version", "2")
        raise RuntimeError("signature check failed half way")

    with pytest.raises(RuntimeError):
        store.apply_in_transaction(push)
    assert store.list_persons() == [] and store.get_meta("whitelist_version") is None

    def partial(s: Store) -> int:
        s.upsert_person(person("a"))
        with contextlib.suppress(ValueError):  # refused: only this inner write is undone
            s.add_templates("a", np.full((1, 4), np.nan), "m")
        return s.add_templates("a", np.ones((1, 4)), "m")

    assert store.apply_in_transaction(partial) == 1
    assert store.count_templates() == 1 and store.get_person("a") is not None


def test_readers_are_not_blocked_by_an_open_write_transaction(store: Store) -> None:
    store.upsert_person(person("a"))
    inside, release = threading.Event(), threading.Event()
    seen: list[object] = []

    def writer(s: Store) -> None:
        s.upsert_person(person("b"))
        inside.set()
        release.wait(5)

    t = threading.Thread(target=store.apply_in_transaction, args=(writer,))
    t.start()
    assert inside.wait(5)
    reader = threading.Thread(target=lambda: seen.extend(p.id for p in store.list_persons()))
    reader.start()
    reader.join(30)  # the writer is still inside its transaction: a blocked read would not finish
    assert not reader.is_alive() and seen == ["a"]  # not blocked, and the committed state only
    release.set()
    t.join()
    assert [p.id for p in store.list_persons()] == ["a", "b"]


def test_integrity_check_reports_broken_foreign_keys(store: Store) -> None:
    conn = raw(store.path)
    conn.execute("INSERT INTO templates (person_id, model_id, dim, embedding, created_at) "
                 "VALUES ('ghost', 'm', 1, x'00000000', 'x')")
    conn.commit()
    assert "foreign key violation in templates" in store.integrity_check()


# ---------------------------------------------------------------------------------------- full disk


def test_size_limit_full_gives_a_clear_error_and_keeps_earlier_data(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    written: list[str] = []
    with Store.open(path, max_bytes=256 * 1024) as s:
        big = ({"code": "x", "params": {"pad": "p" * 2000}},)
        with pytest.raises(StoreFullError, match=r"is full .*database or disk is full.*intact"):
            for i in range(10_000):
                written.append(s.record_event(event(i, reasons=big)))
        assert len(written) > 10
        assert s.integrity_check() == "ok"
        assert [e.event_id for e in s.events(limit=10_000)] == written
        assert s.outbox_depth() == len(written)
        # retention frees pages: the gate can record again without restarting
        s.ack_outbox([r.seq for r in s.pending_outbox(len(written))])
        assert s.purge_synced_events(timedelta(0), now=T0 + timedelta(days=1)) == len(written)
        s.record_event(event(reasons=big))
    with Store.open(path) as s:
        assert s.integrity_check() == "ok" and len(s.events()) == 1


CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}

FSIZE_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from edge.store import EventRecord, Store, StoreError
    store = Store.open(Path(sys.argv[1]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    reasons = ({"code": "pad", "params": {"pad": "p" * 1500}},)
    try:
        for i in range(100_000):
            ev = EventRecord(ts=datetime.now(UTC), gate_id="g", direction="in", decision="deny",
                             reasons=reasons)
            store.record_event(ev)
            print("OK", ev.event_id, flush=True)
    except StoreError as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
""")


def test_file_size_limit_in_a_subprocess_fails_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    out = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(path), str(1_500_000)], capture_output=True,
                         text=True, timeout=60, env=CHILD_ENV, check=True).stdout.splitlines()
    committed = [line.split()[1] for line in out if line.startswith("OK ")]
    assert out[-1].startswith("ERROR StoreWriteError") and "refused a write" in out[-1]
    assert len(committed) > 20
    assert issubclass(StoreFullError, StoreWriteError)
    with Store.open(path) as s:
        assert s.integrity_check() == "ok"
        assert [e.event_id for e in s.events(limit=10_000)] == committed
        assert [r.event_id for r in s.pending_outbox(10_000)] == committed
        s.record_event(event())  # writable again once the limit is gone


# ------------------------------------------------------------------------------------ writer thread


def test_writer_serialises_concurrent_submissions_from_many_threads(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "gate.db")
    writer = StoreWriter(s)
    ids_by_thread: dict[int, list[str]] = {}

    def producer(n: int) -> None:
        futures = [writer.submit(s.record_event, event(n * 1000 + i, gate_id=f"g{n}")) for i in range(40)]
        ids_by_thread[n] = [f.result(timeout=30) for f in futures]

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = writer.submit(s.record_event, event(0, event_id=ids_by_thread[0][0]))
    with pytest.raises(StoreError):
        bad.result(timeout=10)
    assert writer.pending == 0
    expected = {e for ids_ in ids_by_thread.values() for e in ids_}
    assert len(expected) == 320
    assert {e.event_id for e in s.events(limit=1000)} == expected
    outbox = s.pending_outbox(1000)
    assert len(outbox) == 320 and {r.event_id for r in outbox} == expected
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.submit(s.record_event, event())


def test_writer_close_drains_pending_writes_before_closing(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    writer = StoreWriter(Store.open(path))
    futures = [writer.submit(writer.store.record_event, event(i)) for i in range(200)]
    writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(StoreError, match="closed"):
        writer.store.events()
    with Store.open(path) as s:
        assert len(s.events(limit=1000)) == 200 and s.outbox_depth() == 200


KILL_CHILD = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from edge.store import AlarmRecord, EventRecord, Store
    from edge.store.writer import StoreWriter
    writer = StoreWriter(Store.open(Path(sys.argv[1])))
    i = 0
    while True:
        ev = EventRecord(ts=datetime.now(UTC), gate_id="g", direction="in", decision="deny",
                         reasons=({"code": "unknown_face", "params": {"i": i}},))
        alarm = AlarmRecord(ts=ev.ts, kind="fever", severity="high", message=str(i),
                            person_id=f"p{i}")  # each its own source: not grouped
        writer.submit(writer.store.record_event, ev, alarms=[alarm]).result()
        print(ev.event_id, alarm.id, flush=True)  # only after the commit returned
        i += 1
""")


def test_sigkill_while_writing_loses_no_committed_event(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    proc = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                            env=CHILD_ENV)
    assert proc.stdout is not None
    lines: list[list[str]] = []
    deadline = time.monotonic() + 30
    while len(lines) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    lines.extend(line.split() for line in proc.stdout.read().splitlines())  # printed before the kill
    assert proc.returncode == -signal.SIGKILL and len(lines) >= 150
    with Store.open(path) as s:
        assert s.integrity_check() == "ok"
        events = {e.event_id for e in s.events(limit=100_000)}
        outbox = {(r.topic_kind, r.event_id) for r in s.pending_outbox(100_000)}
        alarms = {a.id for a in s.alarms(limit=10_000)}
        for ev_id, alarm_id in lines:
            assert ev_id in events and ("event", ev_id) in outbox
            assert alarm_id in alarms and ("alarm", alarm_id) in outbox
        # and nothing half-written: every stored event has its outbox row and its alarm
        assert {e for k, e in outbox if k == "event"} == events
        assert len(alarms) == len(events)


def test_a_deleted_persons_embeddings_leave_no_bytes_in_the_files(tmp_path: Path) -> None:
    """secure_delete zeroes freed pages and the checkpoint empties the WAL: the raw database and WAL files
    no longer contain the deleted person's template bytes."""
    rng = np.random.default_rng(7)
    doomed = rng.standard_normal((3, 128)).astype("<f4")
    kept = rng.standard_normal((1, 128)).astype("<f4")
    db = tmp_path / "gate.db"
    with Store.open(db) as s:
        s.upsert_person(person("gone"))
        s.upsert_person(person("stays"))
        s.add_templates("gone", doomed, "m")
        s.add_templates("stays", kept, "m")

        def raw_files() -> bytes:
            return b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("gate.db"))

        assert doomed[0].tobytes() in raw_files()  # the check can see template bytes where they are
        assert s.delete_person("gone")
        files = raw_files()
        assert not any(row.tobytes()[:64] in files for row in doomed)
        assert kept[0].tobytes() in files


def test_writer_close_writes_a_slow_backlog_and_gives_up_only_on_a_stall(tmp_path: Path) -> None:
    """close(timeout) bounds a stall, not the drain: a backlog that keeps moving is written in full (an
    overloaded gate shutting down loses nothing); a write that hangs makes close give up after `timeout`."""
    import threading
    import time as _time

    store = Store.open(tmp_path / "gate.db")
    writer = StoreWriter(store)

    def slow_event(i: int) -> str:
        _time.sleep(0.05)
        return store.record_event(EventRecord(ts=datetime.now(UTC), gate_id="g1", direction="in", decision="deny",
                                              reasons=({"code": "unknown_face", "i": i},)))

    for i in range(40):  # 2 s of writes, more than the 0.5 s timeout
        writer.submit(slow_event, i)
    writer.close(timeout=0.5)
    with Store.open(tmp_path / "gate.db") as check:
        assert len(check.events(limit=100)) == 40

    store2 = Store.open(tmp_path / "hung.db")
    hung = StoreWriter(store2)
    release = threading.Event()
    hung.submit(release.wait)  # a write that does not return until released (a disk that hangs)
    closer = threading.Thread(target=hung.close, kwargs={"timeout": 0.5})
    closer.start()
    closer.join(60)  # close can only return by giving up on the stall: the write is still hung
    stalled = closer.is_alive()
    release.set()
    closer.join()
    assert not stalled, "close() waited for the hung write instead of giving up after its timeout"
