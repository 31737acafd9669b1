"""The weekly schedule as one line of text, for a CSV cell: `mon-fri 07:00-22:00; sat,sun 09:00-12:00 14:00-18:00`.

Parts separated by `;`; each part is days (`mon`, `mon,wed`, `mon-fri`, or mixed: `mon,wed-fri`) and
one or more windows `HH:MM-HH:MM` (local time at the gate; an end at or before the start runs past
midnight, `24:00` is the end of the day). A day named in several parts gets all their windows. The
result is the protocol's form, `{"mon": [["07:00", "22:00"]], ...}`; the times themselves are checked
with the gate's own rules (`edge.records.WeeklySchedule`) by the caller.
"""

from __future__ import annotations

import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"(\d{1,2}:\d{2})-(\d{1,2}:\d{2})")


def _days(text: str) -> list[str]:
    out: list[str] = []
    for item in text.lower().split(","):
        first, sep, last = item.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise ValueError(f"{item!r} is not a day or a range of days ({', '.join(DAYS)}, e.g. mon-fri)")
        if not sep:
            out.append(first)
            continue
        i, j = DAYS.index(first), DAYS.index(last)
        out += [DAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8)]  # fri-mon wraps over the weekend
    return out


def parse_schedule_text(text: str) -> dict[str, list[list[str]]]:
    """`mon-fri 07:00-22:00; sat 09:00-18:00` as {"mon": [["07:00", "22:00"]], ...}; ValueError with the fix."""
    schedule: dict[str, list[list[str]]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        days, *windows = part.split()
        if not windows:
            raise ValueError(f"{part!r} names no time window; write e.g. 'mon-fri 07:00-22:00'")
        pairs = []
        for window in windows:
            m = _WINDOW.fullmatch(window)
            if m is None:
                raise ValueError(f"{window!r} is not a time window HH:MM-HH:MM (e.g. 07:00-22:00)")
            pairs.append([m.group(1).zfill(5), m.group(2).zfill(5)])
        for day in _days(days):
            schedule.setdefault(day, []).extend(pairs)
    if not schedule:
        raise ValueError("an empty schedule; leave the cell empty for no time limit")
    return {day: schedule[day] for day in DAYS if day in schedule}
