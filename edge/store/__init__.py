"""The gate's local SQLite store.

`Store` is the database (`db`: connections, transactions, meta) with the operations of its tables:
persons and templates (`persons`), events, alarms, outbox and snapshots (`events`), and passages, audit
and guards (`side_records`). The schema and its migrations are in `migrations`, the thread that
serialises the gate's writes in `writer`, online backup in `backup`, event ids in `ids`. The domain
records themselves are `edge.records`.
"""

from __future__ import annotations

from edge.protocol.payloads import ALARM_SCHEMA, EVENT_SCHEMA
from edge.records import (
    AlarmRecord,
    EventRecord,
    GuardRecord,
    Passage,
    PersonRecord,
    TimeWindow,
    WeeklySchedule,
)
from edge.store.errors import SchemaTooNewError, StoreError, StoreFullError, StoreWriteError
from edge.store.events import EventTables
from edge.store.persons import PersonTables
from edge.store.rows import OutboxRow
from edge.store.side_records import AuditEntry, SideTables

__all__ = [
    "ALARM_SCHEMA", "EVENT_SCHEMA", "AlarmRecord", "AuditEntry", "EventRecord", "GuardRecord", "OutboxRow",
    "Passage", "PersonRecord", "SchemaTooNewError", "Store", "StoreError", "StoreFullError", "StoreWriteError",
    "TimeWindow", "WeeklySchedule",
]


class Store(PersonTables, EventTables, SideTables):
    """The gate's store: open with `Store.open(path)`; see the modules for each table's operations."""
