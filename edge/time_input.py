"""Times people type (a page's `since`/`until`, an API query, a command's `--since`): parsed with bounds,
so an extreme value is a clear refusal (HTTP 422, a one-line CLI error), never an overflow inside a
request. Text without an offset is in `local` (the gate's time zone)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
EXAMPLE = "2026-12-01T08:00 or 2026-12-01T08:00+08:00"


class TimeInputError(ValueError):
    """One line saying what was wrong and what is accepted."""


def bounded_time(value: datetime | str, what: str, local: tzinfo) -> datetime:
    """An aware UTC datetime between EARLIEST and LATEST, or TimeInputError."""
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError as exc:
            raise TimeInputError(f"{what}: {text[:40]!r} is not an ISO-8601 time (e.g. {EXAMPLE})") from exc
    try:
        aware = value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(tzinfo=local)
        in_utc = aware.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise TimeInputError(_range(what)) from exc
    if not EARLIEST <= in_utc <= LATEST:
        raise TimeInputError(_range(what))
    return in_utc


def optional_time(value: datetime | str | None, what: str, local: tzinfo) -> datetime | None:
    """None and blank text stay None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return bounded_time(value, what, local)


def _range(what: str) -> str:
    return f"{what} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (e.g. {EXAMPLE})"


def system_zone() -> tzinfo:
    """The machine's own time zone (for tools with no configured zone of their own)."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def gate_zone(name: str) -> tzinfo:
    """The gate's configured zone (`[gate] timezone`); the machine's own when the name is unknown."""
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return system_zone()
