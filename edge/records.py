"""The domain: persons, events, alarms, passages and guards, their validation and JSON encoding (the
tables are made by `edge.store.migrations`, rows decoded by `edge.store.rows`).

Records validate themselves when made, so nothing malformed reaches a table; times are aware UTC
datetimes, stored as fixed-width ISO-8601 text (`2024-05-01T07:00:00.000000Z`) that sorts by time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from edge.ids import new_event_id

PersonKind = Literal["resident", "visitor", "staff"]
PersonStatus = Literal["active", "suspended", "blocked"]
Direction = Literal["in", "out"]
KINDS: tuple[str, ...] = ("resident", "visitor", "staff")
STATUSES: tuple[str, ...] = ("active", "suspended", "blocked")
DIRECTIONS: tuple[str, ...] = ("in", "out")
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERSON_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")  # same rule as the whitelist messages
MAX_CARE_WATCH_HOURS = 24 * 14
MAX_CARD = 2**32 - 1  # a card number: up to 32 bits (Wiegand 34-bit carries 32; 26-bit carries 16)
JsonDict = dict[str, Any]


# ---------------------------------------------------------------------------------------------- times


def utc(dt: datetime, what: str = "time") -> datetime:
    """`dt` in UTC; ValueError for a naive datetime (its zone would be a guess)."""
    if type(dt) is datetime and dt.tzinfo is UTC:
        return dt  # already what we want (every time read back from the store)
    if not isinstance(dt, datetime):
        raise ValueError(f"{what} must be a datetime, not {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware: {dt!r}")
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+05:00 is before the first UTC datetime
        raise ValueError(f"{what} is out of range in UTC: {dt!r}") from exc


def ts_text(dt: datetime, what: str = "time") -> str:
    # isoformat, not strftime("%Y..."): glibc writes year 999 as "999", which is not ISO-8601 and reads back as junk
    return utc(dt, what).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(text: str, what: str = "time") -> datetime:
    """Aware UTC datetime from ISO-8601 text; text without an offset is refused."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be ISO-8601 text, not {type(text).__name__}")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{what}: not an ISO-8601 time: {text!r}") from exc
    return utc(dt, what)


def _opt_time(value: datetime | str | None, what: str) -> datetime | None:
    if value is None:
        return None
    return parse_ts(value, what) if isinstance(value, str) else utc(value, what)


# ------------------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class TimeWindow:
    """Minutes after local midnight; `end <= start` means the window runs past midnight."""

    start: int  # 0..1439
    end: int  # 1..1440

    def __post_init__(self) -> None:
        if not (0 <= self.start < 1440 and 0 < self.end <= 1440) or self.start == self.end:
            raise ValueError(f"invalid time window {self.start}-{self.end} (minutes)")

    @property
    def wraps(self) -> bool:
        return self.end <= self.start

    @staticmethod
    def parse(pair: Sequence[str]) -> TimeWindow:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"a time window is a pair [\"HH:MM\", \"HH:MM\"], not {pair!r}")
        return TimeWindow(_minutes(pair[0]), _minutes(pair[1]))

    def as_pair(self) -> list[str]:
        return [f"{self.start // 60:02d}:{self.start % 60:02d}", f"{self.end // 60:02d}:{self.end % 60:02d}"]


def _minutes(text: str) -> int:
    m = re.fullmatch(r"([01]\d|2[0-4]):([0-5]\d)", text) if isinstance(text, str) else None
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"not a time of day HH:MM: {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True)
class WeeklySchedule:
    """Access windows per weekday (index 0 = Monday) in the gate's local time; a day without windows
    has no access, except the tail of a window from the day before that runs past midnight."""

    days: tuple[tuple[TimeWindow, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("a weekly schedule has 7 days")

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> WeeklySchedule:
        if not isinstance(data, Mapping):
            raise ValueError(f"a schedule is an object of days to windows, not {data!r}")
        unknown = set(data) - set(DAYS)
        if unknown:
            raise ValueError(f"unknown schedule days {sorted(unknown)}; use {', '.join(DAYS)}")
        days = []
        for day in DAYS:
            windows = data.get(day) or []
            if isinstance(windows, str | bytes) or not isinstance(windows, Sequence):
                raise ValueError(f"schedule {day}: a list of windows, not {windows!r}")
            days.append(tuple(TimeWindow.parse(w) for w in windows))
        return WeeklySchedule(tuple(days))

    def to_json(self) -> JsonDict:
        return {DAYS[i]: [w.as_pair() for w in ws] for i, ws in enumerate(self.days) if ws}

    def allows(self, local: datetime) -> bool:
        """Whether the local wall-clock time `local` falls inside a window."""
        minute = local.hour * 60 + local.minute
        today, yesterday = self.days[local.weekday()], self.days[(local.weekday() - 1) % 7]
        for w in today:
            if (w.start <= minute < w.end) if not w.wraps else minute >= w.start:
                return True
        return any(w.wraps and minute < w.end for w in yesterday)


# -------------------------------------------------------------------------------------------- records


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _str_tuple(value: Any, what: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    if type(value) is tuple and all(type(i) is str and i and (allowed is None or i in allowed) for i in value):
        return value if len(set(value)) == len(value) else tuple(dict.fromkeys(value))  # the common, valid case
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise ValueError(f"{what} must be a list of strings, not {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{what} must be a list of non-empty strings, not {value!r}")
        if allowed is not None and item not in allowed:
            raise ValueError(f"{what}: {item!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)  # slots: a 100,000-person whitelist is held in memory
class PersonRecord:
    """A person the gate knows; constructing one validates and normalises every field."""

    id: str
    name: str
    kind: PersonKind = "resident"
    status: PersonStatus = "active"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = None  # None: unlimited
    uses: int = 0
    allowed_gates: tuple[str, ...] = ()  # empty: every gate
    directions: tuple[Direction, ...] = ()  # empty: both
    schedule: WeeklySchedule | None = None  # None: always
    care_watch_hours: float | None = None
    unit: str | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    card: int | None = None  # the credential number sent to an access panel (drivers.panel); None: no card

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not PERSON_ID.match(self.id):
            raise ValueError(f"person id must match {PERSON_ID.pattern}: {self.id!r}")
        if not isinstance(self.name, str) or len(self.name) > 200:
            raise ValueError(f"person {self.id}: name must be text of at most 200 characters")
        if self.kind not in KINDS:
            raise ValueError(f"person {self.id}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.status not in STATUSES:
            raise ValueError(f"person {self.id}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        _set(self, "valid_from", _opt_time(self.valid_from, "valid_from"))
        _set(self, "valid_until", _opt_time(self.valid_until, "valid_until"))
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError(f"person {self.id}: valid_until must be after valid_from")
        for name in ("max_uses", "uses"):
            value = getattr(self, name)
            if value is None and name == "max_uses":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"person {self.id}: {name} must be a non-negative integer, not {value!r}")
        _set(self, "allowed_gates", _str_tuple(self.allowed_gates, "allowed_gates"))
        _set(self, "directions", _str_tuple(self.directions, "directions", DIRECTIONS))
        if isinstance(self.schedule, Mapping):
            _set(self, "schedule", WeeklySchedule.from_json(self.schedule))
        elif self.schedule is not None and not isinstance(self.schedule, WeeklySchedule):
            raise ValueError(f"person {self.id}: schedule must be a weekly schedule or None")
        hours = self.care_watch_hours
        if hours is not None:
            if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) \
                    or not 0 < hours <= MAX_CARE_WATCH_HOURS:
                raise ValueError(f"person {self.id}: care_watch_hours must be in (0, {MAX_CARE_WATCH_HOURS}]")
            _set(self, "care_watch_hours", float(hours))
        if self.unit is not None and (not isinstance(self.unit, str) or len(self.unit) > 64):
            raise ValueError(f"person {self.id}: unit must be text of at most 64 characters")
        _set(self, "updated_at", _opt_time(self.updated_at, "updated_at"))
        if self.card is not None and (isinstance(self.card, bool) or not isinstance(self.card, int)
                                      or not 0 <= self.card <= MAX_CARD):
            raise ValueError(f"person {self.id}: card must be a whole number in [0, {MAX_CARD}], not {self.card!r}")

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> PersonRecord:
        """From a JSON object (times as ISO-8601 text); unknown keys and bad values raise ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a person is a JSON object, not {type(data).__name__}")
        known = set(PersonRecord.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown person fields: {', '.join(sorted(map(str, unknown)))}")
        if "id" not in data or "name" not in data:
            raise ValueError("a person needs an id and a name")
        kwargs = dict(data)
        for key in ("allowed_gates", "directions"):
            if kwargs.get(key) is None:
                kwargs.pop(key, None)
        if kwargs.get("updated_at") is None:
            kwargs.pop("updated_at", None)
        if kwargs.get("uses") is None:
            kwargs.pop("uses", None)
        return PersonRecord(**kwargs)

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "status": self.status,
            "valid_from": ts_text(self.valid_from) if self.valid_from else None,
            "valid_until": ts_text(self.valid_until) if self.valid_until else None,
            "max_uses": self.max_uses, "uses": self.uses, "allowed_gates": list(self.allowed_gates),
            "directions": list(self.directions),
            "schedule": self.schedule.to_json() if self.schedule else None,
            "care_watch_hours": self.care_watch_hours, "unit": self.unit,
            "updated_at": ts_text(self.updated_at), "card": self.card,
        }


def json_safe(value: Any) -> Any:
    """A JSON-encodable copy: numpy scalars/arrays to Python, tuples to lists, NaN/inf to None."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return ts_text(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    item = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(item):
        return json_safe(item())
    to_dict = getattr(value, "as_dict", None)
    if callable(to_dict):
        return json_safe(to_dict())
    raise ValueError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def dumps(value: Any) -> str:
    return json.dumps(json_safe(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def _text(value: Any, what: str, max_len: int = 200, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValueError(f"{what} must be non-empty text of at most {max_len} characters, not {value!r}")


@dataclass(frozen=True)
class EventRecord:
    """One access decision; reasons/alarms/temperature/scores are JSON-able and stored as given."""

    ts: datetime
    gate_id: str
    direction: Direction
    decision: Literal["grant", "deny"]
    person_id: str | None = None
    reasons: tuple[JsonDict, ...] = ()
    alarms: tuple[JsonDict, ...] = ()
    temperature: JsonDict | None = None
    scores: JsonDict | None = None
    event_id: str = field(default_factory=new_event_id)
    synced: bool = False

    def __post_init__(self) -> None:
        _set(self, "ts", utc(self.ts, "event ts"))
        _text(self.gate_id, "gate_id", 64)
        _choice(self.direction, DIRECTIONS, "direction")
        _choice(self.decision, ("grant", "deny"), "decision")
        _text(self.person_id, "person_id", 64, optional=True)
        _text(self.event_id, "event_id", 64)
        for name in ("reasons", "alarms"):
            value = getattr(self, name)
            if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
                raise ValueError(f"event {name} must be a list, not {value!r}")
            _set(self, name, tuple(json_safe(v) for v in value))
        for name in ("temperature", "scores"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, Mapping):
                    raise ValueError(f"event {name} must be an object or None, not {value!r}")
                _set(self, name, json_safe(value))

    def to_dict(self) -> JsonDict:
        return {"event_id": self.event_id, "ts": ts_text(self.ts), "gate_id": self.gate_id,
                "direction": self.direction, "person_id": self.person_id, "decision": self.decision,
                "reasons": list(self.reasons), "alarms": list(self.alarms), "temperature": self.temperature,
                "scores": self.scores}


SEVERITIES: tuple[str, ...] = ("info", "warning", "high", "critical")

# Every alarm kind a gate raises (docs/protocol.md §10 documents each with its details; the page
# translates each; `[lane] siren_alarms` must name these).
ALARM_PARTS = ("camera", "thermal", "relay", "store", "mqtt", "vision", "web", "panel")
ALARM_KINDS: frozenset[str] = frozenset({
    "stranger", "spoof", "blocked_person", "fever", "sensor_fault", "care_watch", "door_forced", "door_held",
    "fire_release", "fire_release_recovered", "fire_line_fault", "fire_line_recovered", "granted_not_passed",
    "passage_without_grant", "whitelist_rejected", "forged_message", "intake_shed", "ha_button_refused",
    "login_lockout", "panel_offline", *(f"{p}_fault" for p in ALARM_PARTS if p not in ("thermal", "panel")),
    *(f"{p}_recovered" for p in ALARM_PARTS)})

# What tells two sources of one alarm kind apart, besides the kind, the gate and the person: these
# detail keys (kinds not listed: none). Alarms with the same source are grouped (`AlarmRecord.group_key`).
# Kinds raised by what others send (pushes, peer messages, logins, button presses): a flood of them is
# an attack on the alarm path itself, so their repeats wait for the group window even when high.
ALARM_FLOOD_KINDS = frozenset({"whitelist_rejected", "forged_message", "intake_shed", "login_lockout",
                               "ha_button_refused"})

ALARM_SOURCE_DETAILS: dict[str, tuple[str, ...]] = {
    "whitelist_rejected": ("topic", "code"),  # where the refused push came in, and why (each code its severity)
    "forged_message": ("gate_id",),  # the gate the refused peer event named
    "sensor_fault": ("code", "fault"),
    "login_lockout": ("guard",),  # the name tried
}


def alarm_group_key(kind: str, gate_id: str | None, person_id: str | None, details: Mapping[str, Any]) -> str:
    """The source of an alarm as one short text (a SHA-256 prefix of kind, gate, person and the kind's
    source details): repeats of one source share it, different sources do not."""
    source = [kind, gate_id, person_id, [details.get(k) for k in ALARM_SOURCE_DETAILS.get(kind, ())]]
    return hashlib.sha256(dumps(source).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AlarmRecord:
    """An alarm, or a group of repeats of one (`count` of them, the first at `ts`, the latest at
    `last_seen`, with the latest message and details); `count`/`last_seen` are left out of `to_dict`
    for a single alarm, so it reads as it always did."""

    ts: datetime
    kind: str
    severity: str
    message: str
    details: JsonDict = field(default_factory=dict)
    gate_id: str | None = None
    person_id: str | None = None
    id: str = field(default_factory=new_event_id)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    count: int = 1  # occurrences this record stands for (a throttled source may report the ones it held back)
    last_seen: datetime | None = None  # None: the same as ts

    def __post_init__(self) -> None:
        _set(self, "ts", utc(self.ts, "alarm ts"))
        _text(self.kind, "alarm kind", 64)
        _choice(self.severity, SEVERITIES, "alarm severity")
        if not isinstance(self.message, str) or len(self.message) > 1000:
            raise ValueError("alarm message must be text of at most 1000 characters")
        if not isinstance(self.details, Mapping):
            raise ValueError(f"alarm details must be an object, not {self.details!r}")
        _set(self, "details", json_safe(self.details))
        _text(self.gate_id, "gate_id", 64, optional=True)
        _text(self.person_id, "person_id", 64, optional=True)
        _text(self.id, "alarm id", 64)
        _set(self, "acknowledged_at", _opt_time(self.acknowledged_at, "acknowledged_at"))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"alarm count must be a positive integer, not {self.count!r}")
        last = _opt_time(self.last_seen, "alarm last_seen")
        if last is not None and last < self.ts:
            raise ValueError(f"alarm last_seen {ts_text(last)} is before its ts {ts_text(self.ts)}")
        _set(self, "last_seen", last)

    @property
    def seen(self) -> datetime:
        """When it (or its latest repeat) was last raised."""
        return self.last_seen or self.ts

    @property
    def group_key(self) -> str:
        return alarm_group_key(self.kind, self.gate_id, self.person_id, self.details)

    def to_dict(self) -> JsonDict:
        out: JsonDict = {"id": self.id, "ts": ts_text(self.ts), "kind": self.kind, "severity": self.severity,
               "message": self.message, "details": self.details, "gate_id": self.gate_id,
               "person_id": self.person_id}
        if self.count > 1:
            out |= {"count": self.count, "last_seen": ts_text(self.seen)}
        return out


@dataclass(frozen=True)
class Passage:
    """A person passing a gate (this one or, once synced, a peer): for anti-passback and care watch."""

    person_id: str
    ts: datetime
    gate_id: str
    direction: Direction

    def __post_init__(self) -> None:
        _text(self.person_id, "person_id", 64)
        _set(self, "ts", utc(self.ts, "passage ts"))
        _text(self.gate_id, "gate_id", 64)
        _choice(self.direction, DIRECTIONS, "direction")


@dataclass(frozen=True)
class GuardRecord:
    name: str
    role: Literal["viewer", "operator"]
    password_hash: str
    created_at: datetime
    disabled: bool
