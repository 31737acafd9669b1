"""Care watch for elderly residents: who has not passed any gate for longer than their watch period.

Pure: persons, when each was last seen, when each was last alarmed and `now` in; care alarms out.
A person never seen counts from when the watch began (their record's `updated_at`). Within one
absence a person is re-alarmed at most once per watch period; a new absence (seen again after the
last alarm) alarms as soon as it is overdue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edge.records import PersonRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CareAlarm:
    person_id: str
    name: str
    unit: str | None
    hours: float  # the person's watch period
    last_seen: datetime | None  # None: never seen since the watch began
    since: datetime  # start of the absence (last_seen, or updated_at when never seen)
    overdue_by: timedelta  # beyond the watch period

    def message(self) -> str:
        seen = f"last seen {self.last_seen:%Y-%m-%d %H:%M} UTC" if self.last_seen else "never seen"
        where = f" ({self.unit})" if self.unit else ""
        return f"{self.name}{where} has not passed a gate for over {self.hours:g} h, {seen}"


def _utc(dt: datetime | None, what: str, person_id: str) -> datetime | None:
    if not isinstance(dt, datetime):
        if dt is not None:
            log.warning("care watch: %s of %s is not a datetime (%r) and is ignored", what, person_id, dt)
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        log.warning("care watch: %s of %s has no time zone; taken as UTC", what, person_id)
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def overdue(persons: Iterable[PersonRecord], last_seen: Mapping[str, datetime], now: datetime,
            last_alarms: Mapping[str, datetime] | None = None) -> list[CareAlarm]:
    """Care alarms due now for active persons with `care_watch_hours`, longest overdue first."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, not {now!r}")
    now = now.astimezone(UTC)
    last_alarms = last_alarms or {}
    out: list[CareAlarm] = []
    for p in persons:
        if p.care_watch_hours is None or p.status != "active":
            continue
        if p.valid_until is not None and now >= p.valid_until:
            continue  # moved out: nobody to watch
        period = timedelta(hours=p.care_watch_hours)
        seen = _utc(last_seen.get(p.id), "last_seen", p.id)
        since = seen if seen is not None else p.updated_at
        absent = now - since
        if absent < period:
            continue
        alarmed = _utc(last_alarms.get(p.id), "last alarm", p.id)
        if alarmed is not None and alarmed >= since and now - alarmed < period:
            continue  # already alarmed for this absence within the period
        out.append(CareAlarm(p.id, p.name, p.unit, p.care_watch_hours, seen, since, absent - period))
    out.sort(key=lambda a: (-a.overdue_by, a.person_id))
    return out
