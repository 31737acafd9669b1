"""What the guards' page needs of its gate, and nothing more: `WebParts`, built by the gate
(`Gate.web_parts()`) and passed to `create_app(parts)` / `WebServer(parts)`.

- `StoreView`: the store's read-only queries the page shows (events, face crops, alarms, persons, guards).
- `GuardWrites`: the page's writes, all through the gate's store writer; the audit rows go through
  its kept path (`submit_kept`), so a full disk delays them instead of dropping them.
- `GateActions`: what the page asks the gate to do or tell (open by hand, live updates, preview, health).
- `WebParts`: those three plus the gate's identity, its `[web]` section, the cached whitelist's name
  lookup and the MQTT link's state.

This module imports neither FastAPI nor the gate: the page depends on these types only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from edge.config.web import WebConfig
from edge.records import AlarmRecord, EventRecord, GuardRecord, JsonDict, PersonRecord
from edge.store.writer import StoreWriter

Listener = Callable[[str, dict[str, object]], None]


class StoreView(Protocol):
    """The store's read-only side, as the page uses it (`edge.store.Store` is one)."""

    @property
    def snapshots(self) -> bool: ...

    def events(self, since: datetime | None = None, until: datetime | None = None,
               person_id: str | None = None, decision: Literal["grant", "deny"] | None = None,
               limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[EventRecord]: ...

    def get_event(self, event_id: str) -> EventRecord | None: ...

    def get_snapshot(self, event_id: str) -> bytes | None: ...

    def alarms(self, since: datetime | None = None, kind: str | None = None, unacknowledged: bool = False,
               limit: int = 100, offset: int = 0) -> list[AlarmRecord]: ...

    def list_persons(self, query: str | None = None, limit: int = 100, offset: int = 0) -> list[PersonRecord]: ...

    def get_person(self, person_id: str) -> PersonRecord | None: ...

    def get_guard(self, name: str) -> GuardRecord | None: ...


class GuardWrites:
    """The page's writes, on the gate's store writer thread (the page never writes the store itself)."""

    def __init__(self, writer: StoreWriter) -> None:
        self._writer = writer

    def audit(self, actor: str, action: str, details: JsonDict | None = None) -> None:
        """An audit row (login, logout, alarm_ack, refusals...): kept in memory and written again when the
        disk refuses it; its time is when it happened, not when it was finally written."""
        self._writer.submit_kept(self._writer.store.audit, actor, action, details or {}, ts=datetime.now(UTC))

    def acknowledge_alarm(self, alarm_id: str, guard: str) -> Future[bool]:
        """True once stored if the alarm existed unacknowledged; the future raises StoreError if refused."""
        return self._writer.submit(self._writer.store.acknowledge_alarm, alarm_id, guard, datetime.now(UTC))


@dataclass(frozen=True)
class GateActions:
    """What the page asks of the running gate."""

    manual_open: Callable[[str, str], EventRecord]  # (guard, reason); ValueError, RelayError
    subscribe: Callable[[Listener], Callable[[], None]]  # every decision and alarm; returns the unsubscribe
    preview_jpeg: Callable[[], bytes | None]  # the latest frame with face boxes, or None
    health: Callable[[], dict[str, object]]  # the gate's health snapshot (JSON-able)
    alive: Callable[[], bool]  # every gate thread alive and fresh
    stopping: Callable[[], bool]  # the gate is shutting down
    record_alarm: Callable[[AlarmRecord], None]  # stored (kept on a full disk) and published
    relay_pulses: Callable[[], int]  # relay pulses since the gate started
    hold_open: Callable[[str, str, int], object] | None = None  # (guard, reason, minutes); ValueError
    release_hold: Callable[[str], bool] | None = None  # (guard): "release now"; False if none was held
    lane_io: Callable[[], dict[str, object]] | None = None  # fire, siren, the hold-open (edge.safety)


@dataclass(frozen=True)
class WebParts:
    """Everything `create_app` needs: build it with `Gate.web_parts()`."""

    gate_id: str
    timezone: str  # IANA name of the gate's local time ([policy] timezone)
    web: WebConfig  # the gate's [web] section (the default of create_app / WebServer)
    store: StoreView
    writes: GuardWrites
    gate: GateActions
    cached_name: Callable[[str], str | None]  # a person's name from the gate's cached whitelist
    mqtt_connected: Callable[[], bool | None] | None = None  # None: MQTT not configured
