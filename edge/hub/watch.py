"""The hub's own alarms, for the whole community: care watch (a resident under care watch has passed no
gate for their hours: one alarm per person and absence, however many gates) and silent gates (no
state, event or `online` for `gate_silent_after_s`, or the broker's `offline`). Each alarm is raised
once per episode (its `open_key`) and acknowledged once, at the hub."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.hub.db import HubDatabase
from edge.hub.queries import last_grant
from edge.ids import new_event_id
from edge.records import parse_ts, ts_text

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]


class Watch:
    def __init__(self, db: HubDatabase, *, gate_silent_after_s: float = 120.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.silent_after = timedelta(seconds=gate_silent_after_s)
        self.clock = clock

    def check(self) -> list[JsonDict]:
        """Raise what is due now; returns the alarms raised by this call."""
        return self._care() + self._silent()

    def raise_once(self, kind: str, open_key: str, details: JsonDict, gate: str | None = None,
                   person: str | None = None) -> JsonDict | None:
        """An alarm, unless one with this `open_key` exists (then None)."""
        return self._raise(kind, open_key, details, gate, person)

    def _raise(self, kind: str, open_key: str, details: JsonDict, gate: str | None = None,
               person: str | None = None) -> JsonDict | None:
        with self.db.tx():
            if self.db.one("SELECT id FROM hub_alarms WHERE open_key = ?", (open_key,)) is not None:
                return None
            alarm = {"id": new_event_id(), "ts": ts_text(self.clock()), "kind": kind, "gate_id": gate,
                     "person_id": person, "details": details}
            self.db.execute("INSERT INTO hub_alarms (id, ts, kind, gate_id, person_id, details, open_key) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?)", (alarm["id"], alarm["ts"], kind, gate, person,
                                                      json.dumps(details, ensure_ascii=False), open_key))
        log.warning("hub alarm %s: %s", kind, details)
        return alarm

    def _care(self) -> list[JsonDict]:
        now = self.clock()
        out = []
        for pid, entry_text, updated_at in self.db.rows("SELECT id, entry, updated_at FROM persons "
                                                        "WHERE status = 'active'"):
            hours = json.loads(entry_text).get("care_watch_hours")
            if not hours:
                continue
            seen = last_grant(self.db, pid)
            since = parse_ts(seen) if seen else parse_ts(updated_at)
            if now - since < timedelta(hours=float(hours)):
                continue
            overdue = (now - since - timedelta(hours=float(hours))).total_seconds() / 3600
            alarm = self._raise("care_watch", f"care:{pid}:{ts_text(since)}", {
                "hours": hours, "last_seen": seen, "overdue_h": round(overdue, 2)}, person=pid)
            if alarm:
                out.append(alarm)
        return out

    def _silent(self) -> list[JsonDict]:
        now = self.clock()
        out = []
        last_events = dict(self.db.rows("SELECT gate_id, MAX(ts) FROM events GROUP BY gate_id"))
        seen = {r[0]: r for r in self.db.rows("SELECT gate_id, available, available_at, state_at FROM gate_seen")}
        for (gate_id,) in self.db.rows("SELECT gate_id FROM gates"):
            s = seen.get(gate_id)
            heard = [t for t in ((s[2] if s else None), (s[3] if s else None), last_events.get(gate_id)) if t]
            if not heard:
                continue  # never heard of: not installed yet, nothing to miss
            last = max(parse_ts(t) for t in heard)
            offline = s is not None and s[1] == "offline"
            if not offline and now - last < self.silent_after:
                continue
            alarm = self._raise("gate_silent", f"silent:{gate_id}:{ts_text(last)}", {
                "last_heard": ts_text(last), "available": s[1] if s else None}, gate=gate_id)
            if alarm:
                out.append(alarm)
        return out

    def alarms(self, open_only: bool = False) -> list[JsonDict]:
        sql = "SELECT id, ts, kind, gate_id, person_id, details, acknowledged_by, acknowledged_at FROM hub_alarms"
        if open_only:
            sql += " WHERE acknowledged_by IS NULL"
        return [{"id": r[0], "ts": r[1], "kind": r[2], "gate_id": r[3], "person_id": r[4],
                 "details": json.loads(r[5]), "acknowledged_by": r[6], "acknowledged_at": r[7]}
                for r in self.db.rows(sql + " ORDER BY ts, id")]

    def acknowledge(self, alarm_id: str, by: str) -> bool:
        with self.db.tx():
            return self.db.execute("UPDATE hub_alarms SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? "
                                   "AND acknowledged_by IS NULL", (by, ts_text(self.clock()), alarm_id)) == 1
