"""Alarms: grouped, bounded, and written with their outbox rows.

A repeat of an alarm becomes part of the earlier one's row instead of a row of its own when it comes
from the same source (`AlarmRecord.group_key`: kind, gate, person and the kind's source details, listed
in `edge.records.ALARM_SOURCE_DETAILS`), the earlier one is still unacknowledged, and the repeat comes
within `window` of the group's latest occurrence (`last_seen`). The row then counts the occurrences
(`count`), keeps the first time (`ts`), the latest (`last_seen`), the latest message and details and the
highest severity. An acknowledged alarm is closed: the next one starts a new group.

What goes to the server: the first alarm of a group is an outbox row at once (as before); a repeat
writes an outbox row (the group's state: same `id`, with `count` and `last_seen`) only when the group's
last one is at least `window` old, and `flush_alarm_groups` (the supervisor, every few seconds) sends
the groups that grew since, once their last row is `window` old. So a group costs at most one message
per window, and its final count reaches the server within a window of its last repeat. A queued,
unsent row of a group is replaced by the newer one (a long outage queues one row per group).

Bounded: `purge_alarms` deletes alarms last seen before a cutoff; `cap_alarms` keeps at most `max_rows`
(acknowledged ones go first, then unacknowledged ones from the lowest severity and the oldest; every
unacknowledged one deleted is logged, high and critical ones as errors).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta

from edge.protocol.payloads import ALARM_SCHEMA
from edge.records import ALARM_FLOOD_KINDS, SEVERITIES, AlarmRecord, dumps, parse_ts, ts_text
from edge.store.db import Database, now_utc, page_bounds
from edge.store.rows import alarm_from_row

log = logging.getLogger("edge.store")
GROUP_WINDOW = timedelta(minutes=10)  # the defaults of [store] alarm_group_minutes and alarm_max_rows
MAX_ALARM_ROWS = 10_000
FLUSH_BATCH = 500
_RANK = "CASE severity WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'high' THEN 2 ELSE 3 END"


class AlarmTables(Database):
    """The alarms table (grouping, acknowledgement, retention); its outbox rows."""

    alarm_window: timedelta = GROUP_WINDOW  # zero: no grouping, every alarm is its own row
    alarm_max_rows: int = MAX_ALARM_ROWS

    def configure_alarms(self, window: timedelta, max_rows: int) -> None:
        """The grouping window and the row ceiling (`[store]` of the config); call before writing."""
        if window < timedelta(0) or max_rows < 1:
            raise ValueError(f"alarm window {window} must be >= 0 and the row ceiling {max_rows} >= 1")
        self.alarm_window, self.alarm_max_rows = window, int(max_rows)

    def _alarm_outbox(self, conn: sqlite3.Connection, a: AlarmRecord) -> None:
        # only the newest state of a group waits to go out: an unsent older one is replaced
        conn.execute("DELETE FROM outbox WHERE event_id = ? AND topic_kind = 'alarm'", (a.id,))
        self._outbox(conn, a.id, "alarm", {"schema": ALARM_SCHEMA, **a.to_dict()})

    def _insert_alarm(self, conn: sqlite3.Connection, a: AlarmRecord) -> str:
        """Store `a` (in the caller's transaction) as a new group or as a repeat of its open group; the
        id of the row it went into."""
        key = a.group_key
        row = None
        if self.alarm_window > timedelta(0):
            row = conn.execute("SELECT * FROM alarms WHERE group_key = ? AND acknowledged_at IS NULL AND "
                               "last_seen >= ? ORDER BY last_seen DESC LIMIT 1",
                               (key, ts_text(a.ts - self.alarm_window))).fetchone()
        if row is None or row["id"] == a.id:  # the same id again is refused by the primary key, as before
            conn.execute("INSERT INTO alarms (id, ts, kind, severity, message, details, gate_id, person_id, count, "
                         "last_seen, group_key, published_count, published_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (a.id, ts_text(a.ts), a.kind, a.severity, a.message, dumps(a.details), a.gate_id,
                          a.person_id, a.count, ts_text(a.seen), key, a.count, ts_text(a.ts)))
            self._alarm_outbox(conn, a)
            self._cap(conn)
            return a.id
        return self._repeat(conn, row, a)

    def _repeat(self, conn: sqlite3.Connection, row: sqlite3.Row, a: AlarmRecord) -> str:
        group = alarm_from_row(row)
        latest = a.seen >= group.seen
        severity = max(group.severity, a.severity, key=SEVERITIES.index)
        grown = AlarmRecord(id=group.id, ts=min(group.ts, a.ts), kind=group.kind, severity=severity,
                            message=a.message if latest else group.message,
                            details=a.details if latest else group.details, gate_id=group.gate_id,
                            person_id=group.person_id, count=group.count + a.count,
                            last_seen=max(group.seen, a.seen))
        published_at = parse_ts(row["published_at"]) if row["published_at"] else group.ts
        # a high or critical repeat of an incident at the gate (another fever, a forced door) or one that
        # raises the group's severity goes out at once: the server must not learn of it a window late;
        # repeats of kinds others can flood (a storm of forged pushes) wait for the window
        urgent = severity != group.severity or (a.severity in ("high", "critical")
                                                and a.kind not in ALARM_FLOOD_KINDS)
        due = urgent or a.ts - published_at >= self.alarm_window
        conn.execute("UPDATE alarms SET ts = ?, severity = ?, message = ?, details = ?, count = ?, last_seen = ? "
                     "WHERE id = ?", (ts_text(grown.ts), grown.severity, grown.message, dumps(grown.details),
                                      grown.count, ts_text(grown.seen), grown.id))
        if due:
            self._published(conn, grown, a.ts)
        return grown.id

    def _published(self, conn: sqlite3.Connection, group: AlarmRecord, at: datetime) -> None:
        conn.execute("UPDATE alarms SET published_count = ?, published_at = ? WHERE id = ?",
                     (group.count, ts_text(at), group.id))
        self._alarm_outbox(conn, group)

    def record_alarm(self, alarm: AlarmRecord) -> str:
        """Write the alarm (a new group with its outbox row, or a repeat of its open group) in one
        transaction; the id of the alarm row it is counted on."""
        with self._tx() as conn:
            return self._insert_alarm(conn, alarm)

    def flush_alarm_groups(self, now: datetime | None = None) -> int:
        """Send (write the outbox row of) each group that grew since its last row, once that row is
        `alarm_window` old; returns how many. Cheap when there is nothing to send (a read)."""
        at = now_utc(now)
        sql = ("SELECT * FROM alarms WHERE count > published_count AND published_at <= ? "
               f"ORDER BY published_at LIMIT {FLUSH_BATCH}")
        cutoff = (ts_text(at - self.alarm_window),)
        if not self._query(sql, cutoff):
            return 0
        with self._tx() as conn:
            groups = self._parse(conn.execute(sql, cutoff).fetchall(), alarm_from_row, "alarm")
            for group in groups:
                self._published(conn, group, at)
        return len(groups)

    def acknowledge_alarm(self, alarm_id: str, by: str, at: datetime | None = None) -> bool:
        """Close the alarm (its group): a later repeat starts a new one."""
        with self._tx() as conn:
            return conn.execute("UPDATE alarms SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? "
                                "AND acknowledged_at IS NULL", (by, ts_text(now_utc(at)), alarm_id)).rowcount > 0

    def get_alarm(self, alarm_id: str) -> AlarmRecord | None:
        found = self._parse(self._query("SELECT * FROM alarms WHERE id = ?", (alarm_id,)), alarm_from_row, "alarm")
        return found[0] if found else None

    def alarms(self, since: datetime | None = None, kind: str | None = None, unacknowledged: bool = False,
               limit: int = 100, offset: int = 0) -> list[AlarmRecord]:
        """Alarms (groups) last seen at or after `since`, the most recently seen first."""
        limit, offset = page_bounds(limit, offset)
        where, params = ["1"], []
        if since is not None:
            where.append("last_seen >= ?")
            params.append(ts_text(since))
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if unacknowledged:
            where.append("acknowledged_at IS NULL")
        rows = self._query(f"SELECT * FROM alarms WHERE {' AND '.join(where)} ORDER BY last_seen DESC, id DESC "
                           "LIMIT ? OFFSET ?", [*params, limit, offset])
        return self._parse(rows, alarm_from_row, "alarm")

    def last_alarm_times(self, kind: str) -> dict[str, datetime]:
        """When each person last raised an alarm of this kind (e.g. care-watch re-alarm throttling)."""
        rows = self._query("SELECT person_id, max(last_seen) FROM alarms WHERE kind = ? AND person_id IS NOT NULL "
                           "GROUP BY person_id", (kind,))
        return {r[0]: parse_ts(r[1]) for r in rows}

    def alarm_rows(self) -> int:
        return int(self._query("SELECT count(*) FROM alarms")[0][0])

    # ------------------------------------------------------------------------------------ retention

    def purge_alarms(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Retention: delete alarms last seen longer ago than this (unacknowledged ones logged)."""
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return self._delete(conn, "last_seen < ?", (cutoff,), f"last seen before {cutoff}")

    def cap_alarms(self, max_rows: int | None = None) -> int:
        """Delete alarms beyond `max_rows` (default `alarm_max_rows`), acknowledged first; how many."""
        with self._tx() as conn:
            return self._cap(conn, max_rows)

    def _cap(self, conn: sqlite3.Connection, max_rows: int | None = None) -> int:
        ceiling = self.alarm_max_rows if max_rows is None else max(1, int(max_rows))
        excess = int(conn.execute("SELECT count(*) FROM alarms").fetchone()[0]) - ceiling
        if excess <= 0:
            return 0
        order = f"acknowledged_at IS NULL, CASE WHEN acknowledged_at IS NULL THEN {_RANK} ELSE 0 END, last_seen, id"
        return self._delete(conn, f"id IN (SELECT id FROM alarms ORDER BY {order} LIMIT ?)", (excess,),
                            f"over the ceiling of {ceiling} alarm rows")

    def _delete(self, conn: sqlite3.Connection, where: str, params: tuple[object, ...], why: str) -> int:
        open_rows = conn.execute(f"SELECT id, kind, severity, count FROM alarms WHERE ({where}) AND "
                                 "acknowledged_at IS NULL", params).fetchall()
        deleted = int(conn.execute(f"DELETE FROM alarms WHERE {where}", params).rowcount)
        serious = [r for r in open_rows if r["severity"] in ("high", "critical")]
        if serious:
            log.error("alarms: %d unacknowledged high/critical alarm(s) deleted, %s: %s", len(serious), why,
                      ", ".join(f"{r['kind']} {r['id']} (x{r['count']})" for r in serious[:20])
                      + (f" and {len(serious) - 20} more" if len(serious) > 20 else ""))
        if len(open_rows) > len(serious):
            log.warning("alarms: %d unacknowledged info/warning alarm(s) deleted, %s", len(open_rows) - len(serious),
                        why)
        return deleted
