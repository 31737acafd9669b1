"""Events, each written with its outbox row (and its alarms, `edge.store.alarms`) in one transaction; the
outbox read and acked by the sync's drainer; face crops; retention of what the server already has."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from edge.protocol.payloads import EVENT_SCHEMA
from edge.records import AlarmRecord, EventRecord, dumps, parse_ts, ts_text
from edge.store.alarms import AlarmTables
from edge.store.db import now_utc, page_bounds
from edge.store.rows import OutboxRow, event_from_row

log = logging.getLogger("edge.store")
_CHUNK = 500  # ids per IN (...) list


class EventTables(AlarmTables):
    """The events, outbox and snapshots tables (and the alarms, from `AlarmTables`)."""

    def record_event(self, ev: EventRecord, *, alarms: Sequence[AlarmRecord] = (),
                     passage: bool = True) -> str:
        """Write the event, its outbox row and its alarms (grouped, `edge.store.alarms`) in one transaction.

        A grant to a known person also records the passage and counts one use (unless `passage=False`).
        """
        with self._tx() as conn:
            conn.execute("INSERT INTO events (event_id, ts, gate_id, direction, person_id, decision, "
                         "reasons, alarms, temperature, scores, synced) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (ev.event_id, ts_text(ev.ts), ev.gate_id, ev.direction, ev.person_id, ev.decision,
                          dumps(ev.reasons), dumps(ev.alarms),
                          None if ev.temperature is None else dumps(ev.temperature),
                          None if ev.scores is None else dumps(ev.scores), int(ev.synced)))
            self._outbox(conn, ev.event_id, "event", {"schema": EVENT_SCHEMA, **ev.to_dict()})
            for alarm in alarms:
                self._insert_alarm(conn, alarm)
            if passage and ev.decision == "grant" and ev.person_id is not None:
                conn.execute("INSERT OR IGNORE INTO passages (person_id, ts, gate_id, direction) "
                             "VALUES (?, ?, ?, ?)", (ev.person_id, ts_text(ev.ts), ev.gate_id, ev.direction))
                conn.execute("UPDATE persons SET uses = uses + 1 WHERE id = ?", (ev.person_id,))
        return ev.event_id

    def pending_outbox(self, limit: int = 100, after: int = 0) -> list[OutboxRow]:
        """The oldest `limit` outbox rows with `seq` > `after`, oldest first."""
        rows = self._query("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (int(after), max(1, int(limit))))
        return [OutboxRow(r["seq"], r["event_id"], r["topic_kind"], r["payload"], parse_ts(r["created_at"]))
                for r in rows]

    def ack_outbox(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged outbox rows and mark their events synced; returns rows deleted."""
        seqs = [int(s) for s in seqs]
        deleted = 0
        with self._tx() as conn:
            for i in range(0, len(seqs), _CHUNK):
                chunk = seqs[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"UPDATE events SET synced = 1 WHERE event_id IN (SELECT event_id FROM outbox "
                             f"WHERE topic_kind = 'event' AND seq IN ({marks}))", chunk)
                deleted += conn.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk).rowcount
        return deleted

    def outbox_depth(self) -> int:
        return int(self._query("SELECT count(*) FROM outbox")[0][0])

    def events(self, since: datetime | None = None, until: datetime | None = None,
               person_id: str | None = None, decision: Literal["grant", "deny"] | None = None,
               limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[EventRecord]:
        """Events with since <= ts < until, oldest first (or newest first)."""
        limit, offset = page_bounds(limit, offset)
        where, params = ["1"], []
        for cond, value in (("ts >= ?", since and ts_text(since)), ("ts < ?", until and ts_text(until)),
                            ("person_id = ?", person_id), ("decision = ?", decision)):
            if value is not None:
                where.append(cond)
                params.append(value)
        order = "DESC" if newest_first else "ASC"
        rows = self._query(f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY ts {order}, "
                           f"event_id {order} LIMIT ? OFFSET ?", [*params, limit, offset])
        return self._parse(rows, event_from_row, "event")

    def get_event(self, event_id: str) -> EventRecord | None:
        rows = self._query("SELECT * FROM events WHERE event_id = ?", (event_id,))
        found = self._parse(rows, event_from_row, "event")
        return found[0] if found else None

    def purge_synced_events(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Retention: delete synced events (and their snapshots) older than this; unsynced ones stay."""
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM events WHERE synced = 1 AND ts < ? AND event_id NOT IN "
                                "(SELECT event_id FROM outbox)", (cutoff,)).rowcount

    # ------------------------------------------------------------------------------------ snapshots

    def add_snapshot(self, event_id: str, jpeg: bytes) -> bool:
        """Keep a face crop with its event; refused (False) when snapshots are off or it is not a JPEG."""
        if not self.snapshots:
            log.debug("snapshot for %s not kept: snapshots are off", event_id)
            return False
        if not isinstance(jpeg, bytes | bytearray) or bytes(jpeg[:3]) != b"\xff\xd8\xff":
            log.warning("snapshot for %s is not a JPEG and was not kept", event_id)
            return False
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO snapshots (event_id, jpeg, created_at) VALUES (?, ?, ?)",
                         (event_id, bytes(jpeg), ts_text(datetime.now(UTC))))
        return True

    def get_snapshot(self, event_id: str) -> bytes | None:
        rows = self._query("SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,))
        return bytes(rows[0][0]) if rows else None

    def purge_snapshots(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM snapshots WHERE created_at < ?", (cutoff,)).rowcount
