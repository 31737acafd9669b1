"""MqttSync: the gate's one MQTT network thread: connection and availability, the outbox drainer
(QoS 1, bounded in-flight, delete on PUBACK only), the retained state document, and the intake of
whitelist pushes and peer-gate passage events (handled on a second, non-network thread).

Every paho call happens on the network thread; other threads hand work over through queues. The
network thread drives paho through its external-loop API (`loop_read`/`loop_write`/`loop_misc`) around
one `poll()` on the socket and a wake-up socket: it sleeps until the broker sends something, a store
commit wrote outbox rows (the store hands them over, so they are sent without being read back), a
command is queued, or its next timer (keepalive, state, idle poll) is due; an idle gate wakes about
once a second, not twenty times. `poll()` has no descriptor limit (a process may run many gates).
The network thread never waits for a store write:
acknowledged rows are deleted by a small `mqtt-ack` thread (a long whitelist transaction holding the
store's write lock cannot stall keepalives).
Each connection uses a fresh paho client, so nothing of paho's in-memory queue outlives a
connection: after a reconnect (or a restart) the drainer re-reads the outbox from its oldest row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from drivers.heartbeat import DEFAULT_WITHIN_S, Heartbeat
from edge import __version__
from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import STATE_SCHEMA, EventMessage
from edge.protocol.topics import Topics
from edge.store import OutboxRow, Store, StoreError

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
LOOP_TIMEOUT_S = 0.05  # a paused drainer (store not keeping up) looks again after this
MAX_WAIT_S = 1.0  # the longest the network thread sleeps: keepalive checks and the heartbeat
IDLE_POLL_S = 1.0  # an idle drainer also looks for outbox rows nobody told it about (the store notifies)
ACK_FLUSH_ROWS = 200
ACK_FLUSH_S = 1.0  # PUBACKed rows are deleted in batches: at most this late (a crash re-sends them)
_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
CONNACK_TIMEOUT_S = 10.0
CONNECT_WITHIN_S = 60.0  # a TCP/TLS connect that takes longer than this is a hang
STOP_ACK_TIMEOUT_S = 2.0
INTAKE_QUEUE = 256
MAX_UNFLUSHED = 20_000  # PUBACKed rows awaiting deletion before the drainer pauses (store stalled)
MAX_FRESH = 5_000  # committed rows handed over but not yet taken; beyond it (or offline) the table is read


class WhitelistHandler(Protocol):
    """What MqttSync needs from the whitelist side (edge.sync.whitelist.WhitelistApplier)."""

    def handle(self, raw: bytes, topic: str = "", retained: bool = False) -> JsonDict | None: ...

    def handle_current(self, raw: bytes) -> JsonDict | None: ...


def _failed(rc: ReasonCode | int) -> bool:
    return bool(rc.is_failure) if isinstance(rc, ReasonCode) else int(rc) >= 128


class MqttSync:
    """Start with `start()`, stop with `stop()`. `state` returns the gate's part of the retained health
    document; `whitelist` answers pushes (its acks are published on `whitelist/ack`); `on_peer_event`
    gets the validated passage events of the community's other gates. Both run on the intake thread."""

    def __init__(self, cfg: MqttConfig, store: Store, *, gate_id: str, community: str,
                 state: Callable[[], JsonDict] | None = None, whitelist: WhitelistHandler | None = None,
                 on_peer_event: Callable[[JsonDict], None] | None = None, password: str | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.gate_id = gate_id
        self.topics = Topics(cfg.topic_prefix, community, gate_id)
        self._state_fn = state
        self._whitelist = whitelist
        self._on_peer_event = on_peer_event
        self._password = password if password is not None else cfg.password()
        self._v5 = cfg.protocol == "5"
        # shared with other threads
        self._lock = threading.Lock()
        self._commands: queue.SimpleQueue[tuple[str, str, int, bool]] = queue.SimpleQueue()
        self._intake: queue.Queue[tuple[str, str, bytes, bool] | None] = queue.Queue(INTAKE_QUEUE)
        self._stop = threading.Event()
        self.heartbeat = Heartbeat()  # the network thread's; the gate's watchdog checks it
        self._connected = threading.Event()
        self._notified = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()  # a byte on it ends the network thread's wait
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._unwatch: Callable[[], None] | None = None
        self._fresh: deque[OutboxRow] = deque()  # rows the store committed since the drainer last looked
        self._net: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._stats: JsonDict = {"published": 0, "acked": 0, "failed": 0, "connects": 0, "last_error": None,
                                 "connected_since": None, "pushes": 0, "peer_events": 0, "peer_rejected": 0}
        # network thread only
        self._client: mqtt.Client | None = None
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
        self._next_state = 0.0
        self._cap = cfg.max_inflight
        self._session = False  # CONNACK accepted on the current client
        self._refused = False
        self._stopped_mid: int | None = None
        self._stopped_acked = False

    # ------------------------------------------------------------------------------ public (any thread)

    def start(self) -> None:
        if self._net is not None:
            raise RuntimeError("MqttSync already started")
        self._unwatch = self.store.watch_outbox(self._committed)
        self._net = threading.Thread(target=self._run, name="mqtt-net", daemon=True)
        self._worker = threading.Thread(target=self._intake_loop, name="mqtt-intake", daemon=True)
        self._acker = threading.Thread(target=self._ack_loop, name="mqtt-ack", daemon=True)
        self._worker.start()
        self._acker.start()
        self._net.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `available`=`stopped`, flush acknowledged rows, disconnect, join the threads."""
        self._stop.set()
        self._wake()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._net is not None:
            self._net.join(timeout)
            if self._net.is_alive():
                log.error("MQTT network thread did not stop within %s s", timeout)
        if self._worker is not None:
            with contextlib.suppress(queue.Full):
                self._intake.put_nowait(None)
            self._worker.join(timeout)
        if self._acker is not None:
            self._acker.join(timeout)
        if not self.running:
            self._wake_r.close()
            self._wake_w.close()

    def notify(self) -> None:
        """New outbox rows were written: drain now instead of at the next poll."""
        self._notified.set()
        self._wake()

    def publish_ack(self, ack: JsonDict) -> None:
        """Publish a whitelist ack (retained, QoS 1) as soon as the gate is connected."""
        self._commands.put((self.topics.whitelist_ack, json.dumps(ack, ensure_ascii=False), 1, True))
        self._wake()

    def _committed(self, rows: list[OutboxRow]) -> None:
        """The store committed these outbox rows (on the writing thread): queue them and wake the drainer.
        While offline (or when the drainer is far behind) they are not kept: the drainer reads the table."""
        if self._connected.is_set() and len(self._fresh) < MAX_FRESH:
            self._fresh.extend(rows)
        self.notify()

    def _wake(self) -> None:
        """End the network thread's wait now (any thread; never blocks)."""
        with contextlib.suppress(OSError):  # BlockingIOError: the buffer is full, a wake-up is pending anyway
            self._wake_w.send(b"\0")

    @property
    def running(self) -> bool:
        """The network thread is alive (connected or not)."""
        return self._net is not None and self._net.is_alive()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def health(self) -> JsonDict:
        with self._lock:
            out = dict(self._stats)
        out["connected"] = self.connected
        out["inflight"] = len(self._inflight)
        try:
            out["outbox_depth"] = self.store.outbox_depth()
        except StoreError as exc:
            out["outbox_depth"] = None
            out["last_error"] = f"store: {exc}"
        return out

    # ------------------------------------------------------------------------------ network thread

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def _error(self, message: str, *args: object) -> None:
        text = message % args if args else message
        log.error("%s", text)
        with self._lock:
            self._stats["last_error"] = text

    def _run(self) -> None:
        delay = self.cfg.reconnect_min_s
        while not self._stop.is_set():
            self.heartbeat.beat(CONNECT_WITHIN_S)
            was_up = self._connect_and_serve()
            if self._stop.is_set():
                break
            if was_up:
                delay = self.cfg.reconnect_min_s
            wait = delay * random.uniform(0.5, 1.0)
            log.info("MQTT reconnect to %s in %.1f s", self.cfg.url, wait)
            self.heartbeat.beat(wait + DEFAULT_WITHIN_S)
            self._stop.wait(wait)
            delay = min(delay * 2, self.cfg.reconnect_max_s)
        self._flush_acks(force=True)
        self._ack_q.put(None)
        log.info("MQTT sync stopped")

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.gate_id,
                             protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
                             clean_session=None if self._v5 else True)
        client.enable_logger(logging.getLogger(__name__ + ".paho"))
        client.will_set(self.topics.available, "offline", qos=1, retain=True)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self._password)
        if self.cfg.tls:
            client.tls_set_context(self.cfg.ssl_context())
        client.max_inflight_messages_set(self.cfg.max_inflight + 16)  # our own cap is the binding one
        client.connect_timeout = 10.0
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect_and_serve(self) -> bool:
        """One connection's life; True if the broker accepted it (CONNACK success)."""
        try:
            client = self._new_client()
            client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except ssl.SSLCertVerificationError as exc:
            self._error("MQTT TLS handshake with %s failed: the broker's certificate is not trusted (%s); check "
                        "[mqtt] tls_ca_file", self.cfg.url, exc.verify_message or exc)
            return False
        except ssl.SSLError as exc:
            self._error("MQTT TLS with %s failed: %s", self.cfg.url, exc)
            return False
        except (OSError, ValueError) as exc:
            self._error("MQTT connect to %s failed: %s", self.cfg.url, exc)
            return False
        self._client, self._session, self._refused = client, False, False
        self._stopped_mid, self._stopped_acked = None, False
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        stop_deadline: float | None = None
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                self.heartbeat.beat()
                now = time.monotonic()
                if not self._session or stop_deadline is not None:
                    wait = min(MAX_WAIT_S, (stop_deadline if stop_deadline is not None else deadline) - now, 0.25)
                else:
                    wait = self._next_timer(now) - now
                rc = self._pump(client, poller, wait)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._refused:
                    if stop_deadline is None and not self._refused and not self._session and self.cfg.tls \
                            and self.cfg.tls_cert_file is None:  # TLS 1.3 refuses a missing client cert only now
                        self._error("MQTT broker %s closed the TLS connection before its CONNACK (%s); if it "
                                    "requires a client certificate, set [mqtt] tls_cert_file and tls_key_file",
                                    self.cfg.url, mqtt.error_string(rc))
                    elif stop_deadline is None and not self._refused:
                        self._error("MQTT connection to %s lost: %s", self.cfg.url, mqtt.error_string(rc))
                    break
                now = time.monotonic()
                if not self._session:
                    if now > deadline:
                        self._error("MQTT broker %s sent no CONNACK within %s s", self.cfg.url, CONNACK_TIMEOUT_S)
                        break
                    if self._stop.is_set():
                        break
                    continue
                if self._stop.is_set():
                    if stop_deadline is None:
                        stop_deadline = now + STOP_ACK_TIMEOUT_S
                        self._flush_acks(force=True)
                        info = client.publish(self.topics.available, "stopped", qos=1, retain=True)
                        self._stopped_mid = info.mid
                    if self._stopped_acked or now > stop_deadline:
                        client.disconnect()
                        break
                    continue
                self._commands_step(client)
                self._drain_step(client, now)
                self._state_step(client, now)
        finally:
            was_up = self._session
            self._lost()
            self._client = None  # dropped: its sockets close, nothing of its queue is reused
        return was_up

    def _next_timer(self, now: float) -> float:
        """When the connected loop next has something to do without being woken (monotonic)."""
        due = min(now + MAX_WAIT_S, self._next_state, self._next_poll)
        if self._retry_at:
            due = min(due, self._retry_at)
        if self._acked:
            due = min(due, self._last_flush + ACK_FLUSH_S)
        return due

    def _pump(self, client: mqtt.Client, poller: select.poll, timeout: float) -> MQTTErrorCode:
        """One turn of paho's external loop: wait (at most `timeout` s) for the broker's socket or a
        wake-up, then read what arrived, write what is queued and run paho's keepalive checks."""
        sock = client.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted wait in the SSL buffer
        buffered = int(pending()) if callable(pending) else 0
        fd = sock.fileno()
        try:
            poller.register(fd, _POLL_IN | (select.POLLOUT if client.want_write() else 0))  # or modify it
            ready = dict(poller.poll(0 if buffered else max(0, int(timeout * 1000) + 1)))
        except (OSError, ValueError):
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if self._wake_r.fileno() in ready:
            with contextlib.suppress(OSError):
                self._wake_r.recv(4096)
        if ready.get(fd, 0) & _POLL_IN or buffered:
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        if client.want_write():  # queued by a callback (on_connect's publishes, PUBACKs of what came in)
            rc = client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        return client.loop_misc()

    def _lost(self) -> None:
        """The connection ended: forget everything in flight; the outbox still holds those rows."""
        self._connected.clear()
        self._session = False
        self._inflight.clear()
        self._queued.clear()
        self._cursor = 0
        self._known = None
        self._fresh.clear()
        self._flush_acks(force=True)
        with self._lock:
            self._stats["connected_since"] = None

    # paho callbacks (run inside client.loop, i.e. on the network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if _failed(reason_code):
            self._refused = True
            self._error("MQTT broker %s refused the connection: %s", self.cfg.url, reason_code)
            return
        self._cap = self.cfg.max_inflight
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        if isinstance(receive_max, int) and receive_max > 0:
            self._cap = min(self._cap, receive_max)
        subs: list[tuple[str, Any]] = [(t, 1) for t in self.topics.whitelist_push] if self._whitelist else []
        if self._on_peer_event is not None:
            subs.append((self.topics.peer_events, SubscribeOptions(qos=1, noLocal=True) if self._v5 else 1))
        self._subscribe(client, subs)
        if self._whitelist is not None:
            # a SUBSCRIBE of its own, after the pushes': the broker sends the retained community delta (a
            # gate that missed only that one applies it) before the retained pointer, so the pointer is
            # judged against the version after it and asks for a snapshot only when the gate is still behind
            self._subscribe(client, [(self.topics.whitelist_current, 1)])
        self._connected.set()
        self._session = True
        with self._lock:
            self._stats["connects"] += 1
            self._stats["connected_since"] = datetime.now(UTC).isoformat()
        client.publish(self.topics.state, self._state_payload(), qos=1, retain=True)
        client.publish(self.topics.available, "online", qos=1, retain=True)
        self._next_state = time.monotonic() + self.cfg.state_interval_s
        self._next_poll = 0.0
        log.info("MQTT connected to %s as %s", self.cfg.url, self.gate_id)

    def _subscribe(self, client: mqtt.Client, subs: list[tuple[str, Any]]) -> None:
        if not subs:
            return
        if self._v5:
            client.subscribe([(t, o if isinstance(o, SubscribeOptions) else SubscribeOptions(qos=o)) for t, o in subs])
        else:
            client.subscribe(subs)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        self._connected.clear()
        if _failed(reason_code) and not self._stop.is_set() and not self._refused:
            self._error("MQTT disconnected from %s: %s", self.cfg.url, reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        bad = [str(rc) for rc in reason_codes if _failed(rc)]
        if bad:
            self._error("MQTT broker refused subscriptions: %s", ", ".join(bad))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if mid == self._stopped_mid:
            self._stopped_acked = True
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        if _failed(reason_code):
            self._count("failed")
            self._error("broker refused outbox row %s: %s; kept, retried in %.1f s", seq, reason_code,
                        self.cfg.reconnect_min_s)
            self._retry_at = time.monotonic() + self.cfg.reconnect_min_s
            return
        self._acked.append(seq)
        self._unflushed.add(seq)
        self._count("acked")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic == self.topics.whitelist_current:
            kind = "current"
        elif topic in self.topics.whitelist_push:
            kind = "push"
        elif topic.endswith("/events") and self.topics.gate_of(topic) not in (None, self.gate_id):
            kind = "peer"
        else:
            return
        if not msg.payload and kind != "peer":  # an admin cleared a retained message: nothing to handle
            return
        try:
            self._intake.put_nowait((kind, topic, bytes(msg.payload), bool(msg.retain)))
        except queue.Full:
            self._error("MQTT intake queue full: %s message on %s dropped", kind, topic)

    # steps

    def _commands_step(self, client: mqtt.Client) -> None:
        while True:
            try:
                topic, payload, qos, retain = self._commands.get_nowait()
            except queue.Empty:
                return
            client.publish(topic, payload, qos=qos, retain=retain)

    def _flush_acks(self, force: bool = False) -> None:
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
                    self._error("cannot delete %s acknowledged outbox rows: %s", len(seqs), exc)
                    if self._stop.wait(1.0):
                        log.error("%s delivered rows stay in the outbox; they are sent again after a restart",
                                  len(seqs))
                        return
            self._ack_done.put(seqs)

    def _drain_step(self, client: mqtt.Client, now: float) -> None:
        self._flush_acks()
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
                self._error("outbox row %s has unknown kind %r; left in the outbox", row.seq, row.topic_kind)
                self._cursor = max(self._cursor, row.seq)
                continue
            info = client.publish(topic, row.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._error("publish of outbox row %s failed: %s", row.seq, mqtt.error_string(info.rc))
                self._queued.appendleft(row)
                return
            self._inflight[info.mid] = row.seq
            self._cursor = max(self._cursor, row.seq)
            self._count("published")

    def _refill(self, now: float) -> bool:
        if now < self._next_poll and not self._notified.is_set():
            return False
        self._notified.clear()
        self._flush_acks()
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
            self._error("cannot read the outbox: %s", exc)
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

    def _state_payload(self) -> str:
        doc: JsonDict = {}
        if self._state_fn is not None:
            try:
                doc.update(self._state_fn())
            except Exception as exc:  # a broken health source must not stop the sync
                log.exception("state callback failed")
                doc["state_error"] = str(exc)
        doc.update({"schema": STATE_SCHEMA, "gate": self.gate_id, "ts": datetime.now(UTC).isoformat(),
                    "software_version": __version__, "sync": self.health()})
        return json.dumps(doc, ensure_ascii=False, default=str)

    def _state_step(self, client: mqtt.Client, now: float) -> None:
        if now >= self._next_state:
            self._next_state = now + self.cfg.state_interval_s
            client.publish(self.topics.state, self._state_payload(), qos=1, retain=True)

    # ------------------------------------------------------------------------------ intake thread

    def _intake_loop(self) -> None:
        while True:
            item = self._intake.get()
            if item is None:
                return
            kind, topic, payload, retained = item
            try:
                if kind == "peer":
                    self._peer_event(topic, payload)
                    continue
                assert self._whitelist is not None
                self._count("pushes")
                ack = (self._whitelist.handle_current(payload) if kind == "current"
                       else self._whitelist.handle(payload, topic, retained=retained))
                if ack is not None:
                    self.publish_ack(ack)
            except Exception:  # bad input must never kill the intake thread
                log.exception("handling the %s message on %s failed", kind, topic)

    def _peer_event(self, topic: str, payload: bytes) -> None:
        try:
            event = EventMessage.model_validate_json(payload)
        except ValidationError as exc:
            self._count("peer_rejected")
            log.error("peer event on %s rejected: %s", topic, str(exc).splitlines()[0])
            return
        if event.gate_id != self.topics.gate_of(topic):
            self._count("peer_rejected")
            log.error("peer event on %s claims gate %s; rejected", topic, event.gate_id)
            return
        self._count("peer_events")
        if self._on_peer_event is not None:
            self._on_peer_event(event.model_dump(mode="json", by_alias=True))
