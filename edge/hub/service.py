"""The running hub (`gate hub run`): one MQTT connection to the community's broker.

Out: every register change not yet published goes out as a signed delta (retained, with a message
expiry, and the `whitelist/current` pointer), in version order; a gate that asks for a snapshot
(`need_snapshot` in any ack, retained or live) gets one on its own topic, at most once per
`snapshot_min_interval_s`. In: acks (kept per gate: the version it acknowledged), events and alarms
(archived once each, by id), state; each accepted only when signed by the key of the gate whose
topic it came on. A message that does not verify is counted and logged, never stored.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.hub.config import HubConfig
from edge.hub.db import HubDatabase, HubDbError
from edge.hub.ingest import GateKeys, Ingest, checked, store, verified
from edge.hub.messages import delta_payload, snapshot_payloads
from edge.hub.queries import board
from edge.hub.register import Register
from edge.hub.watch import Watch
from edge.protocol.payloads import (
    CURRENT_SCHEMA,
    HUB_STATE_SCHEMA,
    MAX_BACKFILL,
    PASSAGES_SCHEMA,
    PassagesRequest,
)
from edge.protocol.signing import SignatureError, SigningKey
from edge.records import ts_text
from edge.sync.client import make_client

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
STEP_S = 0.5


class Hub:
    def __init__(self, cfg: HubConfig, db: HubDatabase, key: SigningKey, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cfg = cfg
        self.db = db
        self.register = Register(db, clock)
        self.watch = Watch(db, gate_silent_after_s=cfg.hub.gate_silent_after_s, clock=clock)
        self.keys = GateKeys(db)
        self.key = key
        self.clock = clock
        self.prefix = cfg.mqtt.topic_prefix
        self.community = cfg.hub.community
        self.base = f"{self.prefix}/{self.community}"
        self.valid_for = timedelta(hours=cfg.hub.delta_valid_hours)
        self.counts = {"acks": 0, "events": 0, "alarms": 0, "states": 0, "unverified": 0, "snapshots": 0,
                       "deltas": 0}
        self.states: dict[str, JsonDict] = {}
        self._lock = threading.Lock()
        self._wanted: dict[str, float] = {}  # gate -> when it asked for a snapshot (monotonic)
        self._sent: dict[str, float] = {}  # gate -> when it last got one
        self.connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._db_down = False  # a message could not be stored: not acknowledged, redelivered after a reconnect
        self.ingest = Ingest(db, cfg.hub.instance, self._database_down, self.counts)
        self._next_state = 0.0
        self._next_watch = 0.0
        self._backfills: list[tuple[str, str]] = []  # (gate, since) asked for, answered by the main loop

    # ------------------------------------------------------------------------------------ life

    def start(self) -> None:
        client = make_client(self.cfg.mqtt, f"edge-gate-hub-{self.community}-{self.cfg.hub.instance}",
                             password=self.cfg.mqtt.password(), manual_ack=True,
                             will=(f"{self.base}/hub/state", "") if self.cfg.hub.publisher else None)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self.connected.clear()
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        if self.cfg.mqtt.protocol == "5":  # a persistent session: what was not acknowledged comes again
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.cfg.hub.session_expiry_s
            client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=self.cfg.mqtt.keepalive_s,
                                 clean_start=False, properties=props)
        else:
            client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=self.cfg.mqtt.keepalive_s)
        self.ingest.start()
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        if self._client is not None:
            if self.cfg.hub.publisher and self.connected.is_set():  # gone on purpose: gates take the care watch back
                self._client.publish(f"{self.base}/hub/state", b"", qos=1, retain=True).wait_for_publish(5)
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        self.ingest.stop()

    def run(self, stop: threading.Event) -> None:
        """Publish changes and snapshots until `stop` is set; a database that fails is logged and retried."""
        self.start()
        try:
            while not stop.is_set():
                if self._db_down and self.db.alive():
                    log.warning("the database is back: reconnecting for what was not acknowledged meanwhile")
                    self._db_down = False
                    self.stop()
                    self.start()
                try:
                    if self.cfg.hub.publisher:
                        self.step()
                        self._heartbeat()
                    self._answer_backfills()
                    self._watch()
                except HubDbError as exc:
                    log.error("database: %s; retrying", exc)
                except Exception:  # a fault in one turn must not end the service: logged, tried again
                    log.exception("hub turn failed; retrying")
                stop.wait(STEP_S)
        finally:
            self.stop()

    def step(self) -> None:
        """One turn: unpublished changes out (in order), then the snapshots gates asked for."""
        if not self.connected.is_set() or self._client is None:
            return
        for change in self.register.unpublished():
            payload = delta_payload(self.key, self.community, change, valid_for=self.valid_for, now=self.clock())
            self._publish(f"{self.base}/whitelist/delta", payload, retain=True,
                          expiry_s=int(self.valid_for.total_seconds()))
            pointer = {"schema": CURRENT_SCHEMA, "version": change.version, "issued_at": ts_text(self.clock())}
            self._publish(f"{self.base}/whitelist/current", json.dumps(pointer).encode(), retain=True)
            self.register.mark_published(change.version)
            self.counts["deltas"] += 1
            log.info("published delta %s", change.version)
        now = time.monotonic()
        with self._lock:
            due = [g for g, t in self._wanted.items()
                   if now - self._sent.get(g, -1e9) >= self.cfg.hub.snapshot_min_interval_s]
            for gate in due:
                del self._wanted[gate]
                self._sent[gate] = now
        for gate in due:
            chunks = snapshot_payloads(self.key, self.community, self.register, gate=gate, valid_for=self.valid_for,
                                       now=self.clock())
            for chunk in chunks:
                self._publish(f"{self.base}/{gate}/whitelist/snapshot", chunk)
            if chunks:
                self.counts["snapshots"] += 1
                log.info("snapshot version %s (%d chunks) sent to %s", self.register.version, len(chunks), gate)

    def _heartbeat(self) -> None:
        """The signed, retained hub state every state_interval_s (gates leave the care watch to the hub)."""
        now = time.monotonic()
        if now < self._next_state or not self.connected.is_set():
            return
        self._next_state = now + self.cfg.hub.state_interval_s
        doc = {"schema": HUB_STATE_SCHEMA, "community": self.community, "ts": ts_text(self.clock()),
               "version": self.register.version, "care_watch": True, "interval_s": self.cfg.hub.state_interval_s}
        self._publish(f"{self.base}/hub/state", json.dumps(self.key.sign(doc)).encode(), retain=True)

    def _answer_backfills(self) -> None:
        """Each gate's passages request: the other gates' grants since then, signed (protocol §7b)."""
        if not self.connected.is_set():
            return  # kept until the connection is back
        with self._lock:
            asked, self._backfills = self._backfills, []
        for gate, since in asked:
            rows = self.db.rows("SELECT person_id, ts, gate_id, body FROM events WHERE decision = 'grant' AND "
                                "person_id IS NOT NULL AND gate_id <> ? AND ts >= ? ORDER BY ts LIMIT ?",
                                (gate, since, MAX_BACKFILL + 1))
            passages = [{"person_id": p, "ts": t, "gate_id": g,
                         "direction": json.loads(b).get("direction", "in")} for p, t, g, b in rows[:MAX_BACKFILL]]
            doc = {"schema": PASSAGES_SCHEMA, "community": self.community, "gate": gate, "since": since,
                   "passages": passages, "more": len(rows) > MAX_BACKFILL, "ts": ts_text(self.clock())}
            self._publish(f"{self.base}/{gate}/passages", json.dumps(self.key.sign(doc)).encode())
            log.info("backfill for %s: %d passages since %s", gate, len(passages), since)

    def _watch(self) -> None:
        now = time.monotonic()
        if now >= self._next_watch:
            self._next_watch = now + self.cfg.hub.watch_interval_s
            self.watch.check()

    def _publish(self, topic: str, payload: bytes, retain: bool = False, expiry_s: int | None = None) -> None:
        assert self._client is not None
        props = None
        if expiry_s is not None and self.cfg.mqtt.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = max(1, expiry_s)
        info = self._client.publish(topic, payload, qos=1, retain=retain, properties=props)
        info.wait_for_publish(30)

    # ------------------------------------------------------------------------------------ MQTT in

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any = None) -> None:
        if rc.is_failure:
            log.error("the broker refused the hub: %s", rc)
            return
        share = f"$share/{self.cfg.hub.shared_group}/" if self.cfg.hub.shared_group else ""
        client.subscribe([(f"{share}{self.base}/+/{t}", 1)
                          for t in ("whitelist/ack", "events", "alarms", "state", "available", "passages/request")])
        self.connected.set()
        log.info("hub connected to %s", self.cfg.mqtt.url)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """Acknowledged (PUBACK) once stored, or once judged not worth storing; never while the database
        refuses it: the broker keeps it in the hub's session and sends it again after a reconnect."""
        try:
            if self.handle(msg.topic, bytes(msg.payload), ack=lambda: client.ack(msg.mid, msg.qos)):
                return  # the writer acknowledges it once stored
        except HubDbError as exc:
            self._database_down(exc)
            return
        except Exception:  # bad input must never stop the hub
            log.exception("message on %s failed", msg.topic)
        client.ack(msg.mid, msg.qos)

    def _database_down(self, exc: HubDbError) -> None:
        if not self._db_down:
            log.error("database: %s; not acknowledging messages until it is back", exc)
        self._db_down = True

    def handle(self, topic: str, payload: bytes, ack: Callable[[], object] | None = None) -> bool:
        """One message from a gate (the MQTT thread, or a test). With `ack`, events and alarms go to the
        batched writer, which calls `ack` once they are stored; returns True when it took the ack."""
        head = self.base + "/"
        if not topic.startswith(head) or not payload:
            return False
        gate, _, kind = topic[len(head):].partition("/")
        if gate == "hub":
            return False
        if kind == "available":  # plain text and unsigned (the broker writes `offline`): a hint for the board
            text = payload.decode("utf-8", "replace")[:16]
            if self.keys.get(gate) is not None:
                self._seen(gate, "available", text)
            return False
        doc = self._verified(gate, kind, payload)
        if doc is None:
            return False
        if kind == "whitelist/ack":
            self._ack(gate, doc)
        elif kind in ("events", "alarms"):
            if ack is not None:
                self.ingest.offer(kind, gate, doc, ack)
                return True
            store(self.db, [(kind, gate, doc)], self.cfg.hub.instance)
            self.counts[kind] += 1
        elif kind == "passages/request":
            try:
                req = PassagesRequest.model_validate(doc)
            except ValueError as exc:
                log.warning("passages request of %s refused: %s", gate, str(exc).splitlines()[0])
                return False
            with self._lock:
                self._backfills.append((gate, ts_text(req.since)))
        elif kind == "state":
            self.states[gate] = doc
            self._seen(gate, "state", json.dumps(doc, ensure_ascii=False))
            self.counts["states"] += 1
        return False

    def _seen(self, gate: str, what: str, value: str) -> None:
        now = ts_text(self.clock())
        with self.db.tx():
            if self.db.one("SELECT gate_id FROM gate_seen WHERE gate_id = ?", (gate,)) is None:
                self.db.execute("INSERT INTO gate_seen (gate_id) VALUES (?)", (gate,))
            column = "available" if what == "available" else "state"
            self.db.execute(f"UPDATE gate_seen SET {column} = ?, {column}_at = ? WHERE gate_id = ?", (value, now, gate))

    def _verified(self, gate: str, kind: str, payload: bytes) -> JsonDict | None:
        try:
            return checked(kind, verified(self.keys, gate, payload))
        except (ValueError, SignatureError) as exc:
            self.counts["unverified"] += 1
            log.warning("%s message on gate %s's topic ignored: %s", kind, gate, exc)
            known = self.keys.get(gate) is not None
            hour = self.clock().strftime("%Y-%m-%dT%H")
            self.watch.raise_once("forged_message" if known else "unknown_gate",
                                  f"{'forged' if known else 'unknown'}:{gate[:64]}:{hour if known else ''}",
                                  {"topic_kind": kind, "reason": str(exc)[:200]}, gate=gate[:64])
            return None

    def _ack(self, gate: str, ack: JsonDict) -> None:
        self.counts["acks"] += 1
        current = ack.get("current_version")
        with self.db.tx():
            self.db.execute("DELETE FROM gate_acks WHERE gate_id = ?", (gate,))
            self.db.execute("INSERT INTO gate_acks (gate_id, version, kind, status, code, need_snapshot, ts, "
                            "push_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (gate, int(current) if isinstance(current, int) else 0, str(ack.get("kind")),
                             str(ack.get("status")), str(ack.get("code")), int(bool(ack.get("need_snapshot"))),
                             str(ack.get("ts")), ack.get("push_digest")))
        if ack.get("need_snapshot"):
            with self._lock:
                self._wanted.setdefault(gate, time.monotonic())
            log.info("gate %s (version %s) asks for a snapshot (%s)", gate, current, ack.get("code"))

    # ------------------------------------------------------------------------------------ status

    def gate_status(self) -> list[JsonDict]:
        """The gate board (edge.hub.queries.board)."""
        return board(self.db)
