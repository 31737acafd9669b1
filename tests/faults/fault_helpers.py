"""Helpers of the fault-injection suite: gate configs on a copy of the demo store, a real gate in this
process with its supervisor pass on a thread (what `gate run` does once a second), and the checks every
fault test ends with: the right alarms, no lost event, a sound store.

The real `gate run` process (`GateProcess`), polling and the config builder come from tests/support; the
sync suite's MQTT subscriber and push builders are reused from tests/sync/sync_helpers.py.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from support import gate_config as shared
from support.gate_process import GateProcess
from support.paths import REPO, TESTS
from support.wait import wait_until

if str(TESTS / "sync") not in sys.path:
    sys.path.insert(0, str(TESTS / "sync"))

from sync_helpers import COMMUNITY, GATE, Subscriber

from edge.config import load_config
from edge.gate import Gate
from edge.lane import Outcome
from edge.protocol.topics import Topics
from edge.store import EventRecord, Store

TOPICS = Topics("edge-gate", COMMUNITY, GATE)

__all__ = ["COMMUNITY", "GATE", "REPO", "TOPICS", "GateProcess", "LiveGate", "Subscriber", "all_events",
           "check_store", "codes", "committed", "delivered", "gate_config", "mqtt_section", "query", "wait_until"]


def gate_config(prepared: Path, tmp: Path, *, camera_dir: Path | None = None, fps: int = 20, policy: str = "",
                extra: str = "") -> Path:
    """A gate config on a fresh copy of the prepared demo store: folder camera, simulated GY-MCU90614 and
    LCUS relay on ptys, no page; `policy` lines go into [policy], `extra` is appended TOML."""
    return shared.gate_config(tmp, camera_dir or prepared / "scene", store_from=prepared, gate_id=GATE,
                              community=COMMUNITY, fps=fps, reconnect_s=(0.1, 0.3),
                              policy=f"anti_passback_s = 0\n{policy}", extra=extra)


def mqtt_section(url: str, admin_key: str | None = None) -> str:
    """[mqtt] for `gate_config(extra=...)`: quick reconnects, and the admin's public key if given."""
    keys = f'admin_public_keys = ["{admin_key}"]\n' if admin_key else ""
    return f'[mqtt]\nenabled = true\nurl = "{url}"\nreconnect_min_s = 0.2\nreconnect_max_s = 2.0\n{keys}'


def delivered(server: Subscriber, topic: str = TOPICS.events, key: str = "event_id") -> dict[str, bytes]:
    """What reached the server on `topic`, by id; a duplicate must carry the very same payload."""
    out: dict[str, bytes] = {}
    for payload in server.on(topic):
        ident = json.loads(payload)[key]
        assert out.setdefault(ident, payload) == payload, f"{ident} delivered twice with different payloads"
    return out


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows as another process reading the database sees them (committed data only; the gate may run)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def committed(db: Path) -> set[str]:
    """The event ids the store holds right now."""
    return {row[0] for row in query(db, "SELECT event_id FROM events")}


def all_events(store: Store) -> list[EventRecord]:
    """Every event of the store, oldest first (its queries return pages of at most 10,000)."""
    out: list[EventRecord] = []
    while True:
        page = store.events(limit=10_000, offset=len(out))
        out += page
        if len(page) < 10_000:
            return out


def check_store(db: Path, event_ids: Iterable[str] = (), alarm_kinds: Iterable[str] = ()) -> list[EventRecord]:
    """The properties every fault test ends with: PRAGMA integrity_check (and foreign keys) ok, every
    given event stored, every stored event either delivered (synced) or still waiting in the outbox,
    and alarms of every given kind recorded. Returns the stored events."""
    with Store.open(db) as store:
        assert store.integrity_check() == "ok"
        events = all_events(store)
        stored = {e.event_id for e in events}
        lost = set(event_ids) - stored
        assert not lost, f"{len(lost)} decided events are not in the store: {sorted(lost)[:5]}"
        waiting = {r.event_id for r in store.pending_outbox(1_000_000) if r.topic_kind == "event"}
        dropped = [e.event_id for e in events if not e.synced and e.event_id not in waiting]
        assert not dropped, f"{len(dropped)} stored events neither delivered nor in the outbox"
        kinds = {a.kind for a in store.alarms(limit=10_000)}
        assert set(alarm_kinds) <= kinds, f"alarms {sorted(set(alarm_kinds) - kinds)} missing; got {sorted(kinds)}"
    return events


def codes(outcome: Outcome) -> set[str]:
    """The reason codes of a decision."""
    return {str(r["code"]) for r in outcome.event.reasons}


class LiveGate:
    """A started Gate whose supervisor pass (`Gate.check`) runs on a thread every `check_s`, as `gate run`
    runs it; every outcome and every published alarm is kept with its time.monotonic()."""

    def __init__(self, config: Path, check_s: float = 0.25) -> None:
        self.cfg = load_config(config)
        self.db = self.cfg.gate.data_dir / "gate.db"
        self.check_s = check_s
        self.outcomes: list[tuple[float, Outcome]] = []
        self.alarms: list[tuple[float, dict[str, Any]]] = []
        self.gate = Gate(self.cfg, on_outcome=lambda o: self.outcomes.append((time.monotonic(), o)))
        self.gate.subscribe(self._published)
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="test-supervisor", daemon=True)

    def _published(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "alarm":
            self.alarms.append((time.monotonic(), payload))

    def _supervise(self) -> None:
        while not self._stop.wait(self.check_s):
            self.gate.check()

    def __enter__(self) -> LiveGate:
        self.gate.start()
        self._supervisor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._supervisor.join(10)
        self.gate.shutdown()

    def decided(self, since: float = 0.0, where: Callable[[Outcome], bool] = lambda o: True) -> list[Outcome]:
        return [o for t, o in list(self.outcomes) if t >= since and where(o)]

    def wait_decided(self, since: float, what: str, where: Callable[[Outcome], bool] = lambda o: True,
                     n: int = 1, timeout: float = 30.0) -> list[Outcome]:
        wait_until(lambda: len(self.decided(since, where)) >= n, timeout, what, every=0.05)
        return self.decided(since, where)

    def alarmed(self, kind: str, since: float = 0.0, part: str | None = None) -> list[dict[str, Any]]:
        """Alarms of this kind published since then; with `part`, only the supervisor's alarms about that
        part (a decision's own alarms, e.g. its sensor_fault reason, have no part)."""
        return [a for t, a in list(self.alarms) if t >= since and a.get("kind") == kind
                and (part is None or (a.get("details") or {}).get("part") == part)]

    def wait_alarm(self, kind: str, since: float, part: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        wait_until(lambda: bool(self.alarmed(kind, since, part)), timeout, f"a {kind} alarm", every=0.05)
        return self.alarmed(kind, since, part)[0]

    def event_ids(self) -> list[str]:
        return [o.event.event_id for _, o in list(self.outcomes)]
