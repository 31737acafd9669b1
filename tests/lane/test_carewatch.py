"""Care watch: who is overdue, counting from the last passage or the start of the watch, re-alarmed at
most once per period; with the store's last_seen and last_alarm_times as inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.carewatch import overdue
from edge.store import AlarmRecord, Passage, PersonRecord, Store

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def p(pid: str, hours: float | None = 12, **kw: object) -> PersonRecord:
    kw.setdefault("updated_at", NOW - 100 * H)
    return PersonRecord(id=pid, name=pid.title(), unit="C3", care_watch_hours=hours, **kw)  # type: ignore[arg-type]


def test_overdue_only_for_watched_active_persons_not_seen_for_their_period() -> None:
    persons = [p("anna"), p("bert", hours=None), p("carl"), p("dora", status="suspended"),
               p("emil", valid_until=NOW - H), p("fred", hours=48)]
    seen = {"anna": NOW - 13 * H, "bert": NOW - 99 * H, "carl": NOW - 11 * H, "dora": NOW - 99 * H,
            "emil": NOW - 99 * H, "fred": NOW - 47 * H}
    (alarm,) = overdue(persons, seen, NOW)
    assert alarm.person_id == "anna" and alarm.last_seen == NOW - 13 * H and alarm.since == NOW - 13 * H
    assert alarm.overdue_by == H and alarm.hours == 12.0
    assert alarm.message() == "Anna (C3) has not passed a gate for over 12 h, last seen 2025-03-02 23:00 UTC"


def test_never_seen_counts_from_when_the_watch_began() -> None:
    fresh = p("anna", updated_at=NOW - 2 * H)
    old = p("bert", updated_at=NOW - 20 * H)
    (alarm,) = overdue([fresh, old], {}, NOW)
    assert alarm.person_id == "bert" and alarm.last_seen is None and alarm.since == NOW - 20 * H
    assert alarm.overdue_by == 8 * H and "never seen" in alarm.message()


def test_exactly_at_the_period_is_overdue_and_results_are_sorted_longest_first() -> None:
    persons = [p("anna"), p("bert"), p("carl")]
    seen = {"anna": NOW - 12 * H, "bert": NOW - 30 * H, "carl": NOW + H}  # carl: a peer's clock ahead
    assert [a.person_id for a in overdue(persons, seen, NOW)] == ["bert", "anna"]


def test_re_alarm_at_most_once_per_period_within_one_absence() -> None:
    anna = p("anna")
    seen = {"anna": NOW - 30 * H}
    assert overdue([anna], seen, NOW, {"anna": NOW - 5 * H}) == []
    assert len(overdue([anna], seen, NOW, {"anna": NOW - 12 * H})) == 1
    # an alarm from an earlier absence (before she was seen again) does not hold back the new one
    assert len(overdue([anna], {"anna": NOW - 13 * H}, NOW, {"anna": NOW - 14 * H})) == 1


def test_bad_inputs_do_not_stop_the_others() -> None:
    persons = [p("anna"), p("bert")]
    naive = datetime(2025, 3, 2, 0, 0)  # taken as UTC, with a warning
    got = overdue(persons, {"anna": naive, "bert": "yesterday"}, NOW)  # type: ignore[dict-item]
    expected = [("bert", NOW - 100 * H), ("anna", naive.replace(tzinfo=UTC))]
    assert [(a.person_id, a.since) for a in got] == expected
    with pytest.raises(ValueError, match="aware"):
        overdue(persons, {}, datetime(2025, 3, 3))


def test_with_the_store_as_the_source(tmp_path: Path) -> None:
    with Store.open(tmp_path / "gate.db") as store:
        store.upsert_person(p("anna"))
        store.upsert_person(p("bert", hours=24))
        store.record_passage(Passage("anna", NOW - 20 * H, "north", "out"))
        store.record_passage(Passage("bert", NOW - 20 * H, "south", "in"))  # a peer gate
        due = overdue(store.list_persons(), store.last_seen(), NOW, store.last_alarm_times("care"))
        assert [a.person_id for a in due] == ["anna"]
        store.record_alarm(AlarmRecord(ts=NOW, kind="care", severity="high", message=due[0].message(),
                                       person_id="anna"))
        later = NOW + 2 * H
        assert overdue(store.list_persons(), store.last_seen(), later, store.last_alarm_times("care")) == []
        much_later = NOW + 12 * H
        due = overdue(store.list_persons(), store.last_seen(), much_later, store.last_alarm_times("care"))
        assert [a.person_id for a in due] == ["anna", "bert"]
