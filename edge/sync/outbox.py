"""The outbox drainer: sends the store's outbox rows QoS 1 on the network thread, at most `cap` in
flight (PUBACK pending) at once, and deletes a row only once the broker acknowledged it.

Rows reach it two ways: the store hands over the rows of each commit (`committed`, on the writing
thread), so they are sent without being read back; or the drainer reads the table (`pending_outbox`)
when it knows nothing yet (a new connection: from the oldest row), after a gap, while offline (rows
committed then are not kept: a long outage must not grow memory) or when far behind.
PUBACKed rows are deleted in batches by a small `mqtt-ack` thread, so the network thread never waits
for a store write (a long whitelist transaction holding the store's write lock cannot stall
keepalives); a crash before the delete re-sends them (servers drop duplicates by event id).
Everything but `committed`/`notify` runs on the network thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import SigningKey
from edge.protocol.topics import Topics
from edge.store import OutboxRow, Store, StoreError
from edge.sync.client import failed
from edge.sync.identity import seal_row
from edge.sync.stats import SyncStats

log = logging.getLogger(__name__)
LOOP_TIMEOUT_S = 0.05  # a paused drainer (store not keeping up) looks again after this
IDLE_POLL_S = 1.0  # an idle drainer also looks for outbox rows nobody told it about (the store notifies)
ACK_FLUSH_ROWS = 200
ACK_FLUSH_S = 1.0  # PUBACKed rows are deleted in batches: at most this late (a crash re-sends them)
MAX_UNFLUSHED = 20_000  # PUBACKed rows awaiting deletion before the drainer pauses (store stalled)
MAX_FRESH = 5_000  # committed rows handed over but not yet taken; beyond it (or offline) the table is read


class OutboxDrainer:
    """`start()` the ack thread; per connection `connected(receive_max)`, then `step()` each turn and
    `on_publish()` for each PUBACK; `lost()` when it ends; `finish()` once the network thread stops."""

    def __init__(self, cfg: MqttConfig, store: Store, topics: Topics, stats: SyncStats,
                 stop: threading.Event, key: SigningKey) -> None:
        self.cfg = cfg
        self._key = key
        self.store = store
        self.topics = topics
        self._stats = stats
        self._stop = stop
        self._notified = threading.Event()
        self._fresh: deque[OutboxRow] = deque()  # rows the store committed since the drainer last looked
        # network thread only
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._queued: deque[OutboxRow] = deque()
        self._cursor = 0  # highest seq handed to paho on this connection
        self._known: int | None = None  # every outbox row up to this seq is queued or handed to paho (None: read)
        self._acked: list[int] = []  # PUBACKed seqs not yet handed to the ack thread
        self._unflushed: set[int] = set()  # PUBACKed seqs not yet deleted from the store
        self._ack_q: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._ack_done: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._acker: threading.Thread | None = None
        self._last_flush = 0.0
        self._next_poll = 0.0
        self._retry_at = 0.0
        self._cap = cfg.max_inflight

    # ------------------------------------------------------------------------------ any thread

    def start(self) -> None:
        self._acker = threading.Thread(target=self._ack_loop, name="mqtt-ack", daemon=True)
        self._acker.start()

    def join(self, timeout: float) -> None:
        if self._acker is not None:
            self._acker.join(timeout)

    def committed(self, rows: list[OutboxRow], online: bool) -> None:
        """The store committed these outbox rows (on the writing thread): keep them for the drainer while
        online and not far behind; else they are not kept (the drainer reads the table)."""
        if online and len(self._fresh) < MAX_FRESH:
            self._fresh.extend(rows)
        self.notify()

    def notify(self) -> None:
        """New outbox rows were written: look at once instead of at the next poll (the caller wakes
        the network thread)."""
        self._notified.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def handed_over(self) -> int:
        """Committed rows handed over by the store and not yet taken by the drainer."""
        return len(self._fresh)

    # ------------------------------------------------------------------------------ network thread

    def connected(self, receive_max: object) -> None:
        """A connection was accepted; the broker's Receive Maximum (v5) lowers the in-flight cap."""
        self._cap = self.cfg.max_inflight
        if isinstance(receive_max, int) and receive_max > 0:
            self._cap = min(self._cap, receive_max)
        self._next_poll = 0.0

    def lost(self) -> None:
        """The connection ended: forget everything in flight; the outbox still holds those rows."""
        self._inflight.clear()
        self._queued.clear()
        self._cursor = 0
        self._known = None
        self._fresh.clear()
        self.flush_acks(force=True)

    def finish(self) -> None:
        """The network thread ends: hand over the last acknowledged rows and end the ack thread."""
        self.flush_acks(force=True)
        self._ack_q.put(None)

    def next_due(self, due: float) -> float:
        """`due`, or earlier if a retry or an ack flush is due before it (monotonic)."""
        due = min(due, self._next_poll)
        if self._retry_at:
            due = min(due, self._retry_at)
        if self._acked:
            due = min(due, self._last_flush + ACK_FLUSH_S)
        return due

    def on_publish(self, mid: int, reason_code: ReasonCode | int) -> None:
        """The broker's PUBACK of `mid` (paho callback): a sent row is acknowledged, or refused (kept,
        retried after `reconnect_min_s`)."""
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        if failed(reason_code):
            self._stats.count("failed")
            self._stats.error("broker refused outbox row %s: %s; kept, retried in %.1f s", seq, reason_code,
                              self.cfg.reconnect_min_s)
            self._retry_at = time.monotonic() + self.cfg.reconnect_min_s
            return
        self._acked.append(seq)
        self._unflushed.add(seq)
        self._stats.count("acked")

    def flush_acks(self, force: bool = False) -> None:
        """Hand PUBACKed seqs to the ack thread (in batches); they stay skipped until it deleted them."""
        while True:
            try:
                self._unflushed.difference_update(self._ack_done.get_nowait())
            except queue.Empty:
                break
        if not self._acked:
            return
        now = time.monotonic()
        if force or len(self._acked) >= ACK_FLUSH_ROWS or now - self._last_flush >= ACK_FLUSH_S:
            self._ack_q.put(self._acked)
            self._acked = []
            self._last_flush = now

    def step(self, client: mqtt.Client, now: float) -> None:
        """Publish queued rows until the in-flight window is full or nothing is left."""
        self.flush_acks()
        if now < self._retry_at:
            return
        if self._retry_at:  # a row was refused: start over from the oldest pending row
            self._retry_at = 0.0
            self._queued.clear()
            self._cursor = 0
            self._known = None
        while len(self._inflight) < self._cap:
            if not self._queued and not self._refill(now):
                return
            row = self._queued.popleft()
            topic = self.topics.outbox(row.topic_kind)
            if topic is None:
                self._stats.error("outbox row %s has unknown kind %r; left in the outbox", row.seq, row.topic_kind)
                self._cursor = max(self._cursor, row.seq)
                continue
            try:
                payload = seal_row(self._key, row.payload)
            except ValueError as exc:  # written by this gate, so never expected: kept in the events table
                self._stats.error("outbox row %s cannot be signed (%s); not sent", row.seq, exc)
                self._cursor = max(self._cursor, row.seq)
                self._acked.append(row.seq)
                self._unflushed.add(row.seq)
                continue
            info = client.publish(topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._stats.error("publish of outbox row %s failed: %s", row.seq, mqtt.error_string(info.rc))
                self._queued.appendleft(row)
                return
            self._inflight[info.mid] = row.seq
            self._cursor = max(self._cursor, row.seq)
            self._stats.count("published")

    def _refill(self, now: float) -> bool:
        if now < self._next_poll and not self._notified.is_set():
            return False
        self._notified.clear()
        self.flush_acks()
        if len(self._unflushed) > MAX_UNFLUSHED:  # the store is not keeping up: wait for it
            self._next_poll = now + LOOP_TIMEOUT_S
            return False
        if self._take_fresh():
            return True
        # rows up to the cursor were handed to paho; after a refused row the cursor starts over, and the
        # rows still in flight or acknowledged (not yet deleted) are skipped
        busy = set(self._inflight.values()) | self._unflushed if self._cursor == 0 else set()
        limit = len(busy) + max(200, 5 * self._cap)
        try:
            rows = self.store.pending_outbox(limit, after=self._cursor)
        except StoreError as exc:
            self._stats.error("cannot read the outbox: %s", exc)
            self._next_poll = now + IDLE_POLL_S
            return False
        self._queued.extend(r for r in rows if r.seq not in busy)
        # read to the end: the rows committed from now on follow on directly (unless the read was cut)
        self._known = None if len(rows) >= limit else max([self._cursor, *(r.seq for r in rows)])
        if not self._queued:
            self._next_poll = now + IDLE_POLL_S
            return False
        return True

    def _take_fresh(self) -> bool:
        """Queue the rows the store handed over, as long as they follow on from what the drainer knows of
        the outbox; on a gap (or nothing known yet) return False: the table is read instead."""
        rows: list[OutboxRow] = []
        while self._fresh:
            rows.append(self._fresh.popleft())
        if self._known is None:
            return False
        for row in rows:
            if row.seq <= self._known:  # read from the table already
                continue
            if row.seq != self._known + 1:  # a row nobody told us about lies in between
                self._known = None
                self._queued.clear()
                return False
            self._queued.append(row)
            self._known = row.seq
        if self._queued:
            self._next_poll = time.monotonic() + IDLE_POLL_S
        return bool(self._queued)

    # ------------------------------------------------------------------------------ ack thread

    def _ack_loop(self) -> None:
        """Delete acknowledged rows; a store that refuses is retried (the rows are delivered already)."""
        while True:
            seqs = self._ack_q.get()
            if seqs is None:
                return
            while True:
                try:
                    self.store.ack_outbox(seqs)
                    break
                except StoreError as exc:
                    self._stats.error("cannot delete %s acknowledged outbox rows: %s", len(seqs), exc)
                    if self._stop.wait(1.0):
                        log.error("%s delivered rows stay in the outbox; they are sent again after a restart",
                                  len(seqs))
                        return
            self._ack_done.put(seqs)
