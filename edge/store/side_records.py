"""The store's side records: passages (anti-passback across gates, care watch, peer uses), the audit log
and the guards' accounts."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from edge.records import GuardRecord, JsonDict, Passage, dumps, parse_ts, ts_text
from edge.store.db import Database, now_utc, page_bounds
from edge.store.errors import StoreError


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    action: str
    details: JsonDict



class SideTables(Database):
    """The passages, audit and guards tables."""

    # ------------------------------------------------------------------------------------- passages

    def record_passage(self, p: Passage) -> bool:
        """Record a passage (also one reported by a peer gate); False if it was already known."""
        with self._tx() as conn:
            return conn.execute("INSERT OR IGNORE INTO passages (person_id, ts, gate_id, direction) "
                                "VALUES (?, ?, ?, ?)", (p.person_id, ts_text(p.ts), p.gate_id, p.direction)
                                ).rowcount > 0

    def record_peer_passage(self, p: Passage) -> bool:
        """A grant at a peer gate: its passage and one use of the person's pass, in one transaction and
        only once (a redelivered event changes nothing); False if the passage was already known."""
        with self._tx() as conn:
            new = conn.execute("INSERT OR IGNORE INTO passages (person_id, ts, gate_id, direction) "
                               "VALUES (?, ?, ?, ?)", (p.person_id, ts_text(p.ts), p.gate_id, p.direction)
                               ).rowcount > 0
            if new:
                conn.execute("UPDATE persons SET uses = uses + 1 WHERE id = ?", (p.person_id,))
        return new

    def recent_passages(self, person_id: str | None, since: datetime) -> list[Passage]:
        """Passages since then, oldest first: one person's, or everybody's (person_id None)."""
        if person_id is None:
            rows = self._query("SELECT * FROM passages WHERE ts >= ? ORDER BY ts", (ts_text(since),))
        else:
            rows = self._query("SELECT * FROM passages WHERE person_id = ? AND ts >= ? ORDER BY ts",
                               (person_id, ts_text(since)))
        return self._parse(rows, lambda r: Passage(r["person_id"], parse_ts(r["ts"]), r["gate_id"],
                                                   r["direction"]), "passage")

    def last_seen(self) -> dict[str, datetime]:
        """Each person's latest passage at any gate (care watch)."""
        return {r[0]: parse_ts(r[1]) for r in self._query("SELECT person_id, max(ts) FROM passages "
                                                          "GROUP BY person_id")}

    def purge_passages(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete old passages but keep each person's latest one (care watch needs it)."""
        cutoff = ts_text(now_utc(now) - older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM passages WHERE ts < ? AND ts < (SELECT max(ts) FROM passages p "
                                "WHERE p.person_id = passages.person_id)", (cutoff,)).rowcount

    # ------------------------------------------------------------------------------ audit, guards

    def audit(self, actor: str, action: str, details: JsonDict | None = None, *,
              ts: datetime | None = None) -> int:
        if not actor or not action:
            raise ValueError("an audit entry needs an actor and an action")
        with self._tx() as conn:
            cur = conn.execute("INSERT INTO audit (ts, actor, action, details) VALUES (?, ?, ?, ?)",
                               (ts_text(now_utc(ts)), actor, action, dumps(details or {})))
            return int(cur.lastrowid or 0)

    def audit_entries(self, since: datetime | None = None, limit: int = 100,
                      offset: int = 0) -> list[AuditEntry]:
        """Audit log, newest first."""
        limit, offset = page_bounds(limit, offset)
        rows = self._query("SELECT * FROM audit WHERE ts >= ? ORDER BY id DESC LIMIT ? OFFSET ?",
                           (ts_text(since) if since else "", limit, offset))
        return self._parse(rows, lambda r: AuditEntry(r["id"], parse_ts(r["ts"]), r["actor"], r["action"],
                                                      json.loads(r["details"])), "audit")

    def add_guard(self, name: str, role: Literal["viewer", "operator"], password_hash: str) -> None:
        if not name or not password_hash:
            raise ValueError("a guard needs a name and a password hash")
        if role not in ("viewer", "operator"):
            raise ValueError(f"guard role {role!r} is not viewer or operator")
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM guards WHERE name = ?", (name,)).fetchone():
                raise StoreError(f"guard {name!r} exists already")
            conn.execute("INSERT INTO guards (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, role, password_hash, ts_text(datetime.now(UTC))))

    def set_guard_disabled(self, name: str, disabled: bool) -> bool:
        with self._tx() as conn:
            cur = conn.execute("UPDATE guards SET disabled = ? WHERE name = ?", (int(disabled), name))
            return cur.rowcount > 0

    @staticmethod
    def _guard(r: sqlite3.Row) -> GuardRecord:
        return GuardRecord(r["name"], r["role"], r["password_hash"], parse_ts(r["created_at"]),
                           bool(r["disabled"]))

    def get_guard(self, name: str) -> GuardRecord | None:
        found = self._parse(self._query("SELECT * FROM guards WHERE name = ?", (name,)), self._guard, "guard")
        return found[0] if found else None

    def list_guards(self) -> list[GuardRecord]:
        return self._parse(self._query("SELECT * FROM guards ORDER BY name"), self._guard, "guard")
