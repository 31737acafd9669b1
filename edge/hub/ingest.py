"""The hub's intake of events and alarms, batched: the MQTT thread checks each message (JSON, the gate's
signature, with the gates' keys cached) and queues it; one writer thread stores a batch in one
transaction and only then acknowledges (PUBACK) every message of it. A batch the database refuses is
not acknowledged: the broker sends it again after the hub reconnects (its persistent session)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.hub.db import HubDatabase, HubDbError
from edge.protocol.payloads import AlarmMessage, EventMessage
from edge.protocol.signing import SignatureError, parse_public_key, verify
from edge.records import ts_text

log = logging.getLogger("edge.hub.service")
JsonDict = dict[str, Any]
BATCH = 500
BATCH_WAIT_S = 0.05
KEYS_FRESH_S = 5.0


class GateKeys:
    """The registered gates' keys, re-read from the database at most every KEYS_FRESH_S (and at once,
    at most once a second, for a gate it does not know: a gate just added)."""

    def __init__(self, db: HubDatabase) -> None:
        self.db = db
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._loaded = float("-inf")
        self._lock = threading.Lock()

    def get(self, gate: str) -> Ed25519PublicKey | None:
        now = time.monotonic()
        with self._lock:
            stale = now - self._loaded > KEYS_FRESH_S or (gate not in self._keys and now - self._loaded > 1.0)
            if stale:
                self._keys = {g: parse_public_key(k) for g, k in self.db.rows("SELECT gate_id, public_key FROM gates")}
                self._loaded = now
            return self._keys.get(gate)


def verified(keys: GateKeys, gate: str, payload: bytes) -> JsonDict:
    """The message as a dict when it is JSON, names this gate (if it names one) and is signed by this
    gate's registered key; SignatureError saying why not."""
    key = keys.get(gate)
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise SignatureError("not JSON") from exc
    if key is None:
        raise SignatureError(f"gate {gate} is not in the register")
    if not isinstance(doc, dict):
        raise SignatureError("not a JSON object")
    named = doc.get("gate", doc.get("gate_id", gate))
    if named != gate:
        raise SignatureError(f"names gate {named!r}")
    verify(doc, [key])
    return doc


def checked(kind: str, doc: JsonDict) -> JsonDict:
    """An event or alarm as the protocol defines it (closed schema), its time normalised to UTC `...Z`
    (the archive compares times as text); ValueError when it is not one."""
    if kind == "events":
        return {**doc, "ts": ts_text(EventMessage.model_validate(doc).ts)}
    if kind != "alarms":
        return doc
    alarm = AlarmMessage.model_validate(doc)
    out = {**doc, "ts": ts_text(alarm.ts)}
    if alarm.last_seen is not None:
        out["last_seen"] = ts_text(alarm.last_seen)
    return out


@dataclass
class _Item:
    kind: str  # events, alarms
    gate: str
    doc: JsonDict
    ack: Callable[[], object]


class Ingest:
    def __init__(self, db: HubDatabase, instance: str, on_db_down: Callable[[HubDbError], None],
                 counts: dict[str, int]) -> None:
        self.db = db
        self.instance = instance
        self._on_db_down = on_db_down
        self._counts = counts
        self._q: queue.Queue[_Item | None] = queue.Queue(maxsize=20_000)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hub-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(30)
            self._thread = None

    def offer(self, kind: str, gate: str, doc: JsonDict, ack: Callable[[], object]) -> None:
        """Queue a checked message (the MQTT thread; blocks when 20,000 wait: the broker holds the rest)."""
        self._q.put(_Item(kind, gate, doc, ack))

    def pending(self) -> int:
        return self._q.qsize()

    def _loop(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            end = time.monotonic() + BATCH_WAIT_S
            while len(batch) < BATCH:
                try:
                    item = self._q.get(timeout=max(0.0, end - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._q.put(None)
                    break
                batch.append(item)
            try:
                store(self.db, [(i.kind, i.gate, i.doc) for i in batch], self.instance)
            except HubDbError as exc:
                self._on_db_down(exc)  # not acknowledged: redelivered after the reconnect
                continue
            for item in batch:
                self._counts[item.kind] = self._counts.get(item.kind, 0) + 1
                item.ack()


def store(db: HubDatabase, items: list[tuple[str, str, JsonDict]], instance: str) -> None:
    """Events and alarms, each once by id (an alarm's later state, with a higher `count`, replacing its
    earlier one), in one transaction."""
    with db.tx():
        for kind, gate, doc in items:
            if kind == "events":
                db.execute("INSERT INTO events (event_id, gate_id, ts, person_id, decision, body, stored_by) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                           (doc["event_id"], gate, doc["ts"], doc.get("person_id"), doc["decision"],
                            json.dumps(doc, ensure_ascii=False), instance))
            else:  # a grouped alarm's update (same id, same gate, higher count) replaces what is stored
                db.execute("INSERT INTO alarms (id, gate_id, ts, kind, body, seen_count, last_seen) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, "
                           "seen_count = excluded.seen_count, last_seen = excluded.last_seen "
                           "WHERE alarms.gate_id = excluded.gate_id AND alarms.seen_count < excluded.seen_count",
                           (doc["id"], gate, doc["ts"], doc["kind"], json.dumps(doc, ensure_ascii=False),
                            int(doc.get("count") or 1), doc.get("last_seen") or doc["ts"]))
