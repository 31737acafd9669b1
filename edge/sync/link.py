"""The gate's one MQTT network thread (`mqtt-net`): connect and reconnect (with backoff), availability
(`online`, the retained LWT `offline`, `stopped` on a clean stop), the retained state document, queued
publishes from other threads, and driving the outbox drainer and the intake on each turn.

Every paho call happens on this thread; other threads hand work over through queues and `wake()`.
It drives paho through its external-loop API (`loop_read`/`loop_write`/`loop_misc`) around one `poll()`
on the socket and a wake-up socket: it sleeps until the broker sends something, a store commit wrote
outbox rows, a publish is queued, or its next timer (keepalive, state, idle poll) is due; an idle gate
wakes about once a second, not twenty times. `poll()` has no descriptor limit (a process may run many
gates). Each connection uses a fresh paho client, so nothing of paho's in-memory queue outlives a
connection: after a reconnect (or a restart) the drainer re-reads the outbox from its oldest row.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.backoff import Backoff
from drivers.heartbeat import DEFAULT_WITHIN_S, Heartbeat
from edge.config.mqtt import MqttConfig
from edge.protocol.topics import Topics
from edge.records import ts_text
from edge.sync.client import failed, make_client
from edge.sync.intake import Intake
from edge.sync.outbox import OutboxDrainer
from edge.sync.stats import SyncStats

log = logging.getLogger(__name__)
MAX_WAIT_S = 1.0  # the longest the network thread sleeps: keepalive checks and the heartbeat
_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
CONNACK_TIMEOUT_S = 10.0
CONNECT_WITHIN_S = 60.0  # a TCP/TLS connect that takes longer than this is a hang
STOP_ACK_TIMEOUT_S = 2.0


class Link:
    """The connection's life on its own thread: `start()`, then `stop` (the shared event) plus `wake()`
    end it after the `stopped` state is acknowledged (or STOP_ACK_TIMEOUT_S). `state_payload` makes the
    retained state document, published on connect and every `state_interval_s`."""

    def __init__(self, cfg: MqttConfig, topics: Topics, stats: SyncStats, stop: threading.Event, *,
                 outbox: OutboxDrainer, intake: Intake, state_payload: Callable[[], str],
                 password: str | None, on_link: Callable[[bool], str | None] | None = None) -> None:
        self.cfg = cfg
        self.topics = topics
        self._stats = stats
        self._stop = stop
        self._outbox = outbox
        self._intake = intake
        self._state_payload = state_payload
        self._on_link = on_link  # called on connect (True: returns a passages request to send) and on a loss
        self._password = password
        self._v5 = cfg.protocol == "5"
        self.heartbeat = Heartbeat()  # the network thread's; the gate's watchdog checks it
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # this connection's SUBACKs are all in: messages now reach the gate
        self._pending_subs: set[int] = set()
        self._commands: queue.SimpleQueue[tuple[str, str, int, bool]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()  # a byte on it ends the network thread's wait
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        # network thread only
        self._client: mqtt.Client | None = None
        self._next_state = 0.0
        self._refresh = threading.Event()
        self._session = False  # CONNACK accepted on the current client
        self._refused = False
        self._stopped_mid: int | None = None
        self._stopped_acked = False

    # ------------------------------------------------------------------------------ any thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-net", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("MQTT network thread did not stop within %s s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Close the wake-up sockets (once the thread has ended)."""
        self._wake_r.close()
        self._wake_w.close()

    def wake(self) -> None:
        """End the network thread's wait now (never blocks)."""
        with contextlib.suppress(OSError):  # BlockingIOError: the buffer is full, a wake-up is pending anyway
            self._wake_w.send(b"\0")

    def publish(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        """Publish as soon as the gate is connected (queued for the network thread)."""
        self._commands.put((topic, payload, qos, retain))
        self.wake()

    # ------------------------------------------------------------------------------ network thread

    def _run(self) -> None:
        backoff = Backoff(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s, jitter=0.5)
        while not self._stop.is_set():
            self.heartbeat.beat(CONNECT_WITHIN_S)
            was_up = self._connect_and_serve()
            if self._stop.is_set():
                break
            if was_up:
                backoff.reset()
            wait = backoff.failed()
            log.info("MQTT reconnect to %s in %.1f s", self.cfg.url, wait)
            self.heartbeat.beat(wait + DEFAULT_WITHIN_S)
            self._stop.wait(wait)
        self._outbox.finish()
        log.info("MQTT sync stopped")

    def _new_client(self) -> mqtt.Client:
        client = make_client(self.cfg, self.topics.gate, password=self._password,
                             will=(self.topics.available, "offline"), logger=logging.getLogger(__name__ + ".paho"))
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
        error = self._stats.error
        try:
            client = self._new_client()
            client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except ssl.SSLCertVerificationError as exc:
            error("MQTT TLS handshake with %s failed: the broker's certificate is not trusted (%s); check "
                  "[mqtt] tls_ca_file", self.cfg.url, exc.verify_message or exc)
            return False
        except ssl.SSLError as exc:
            error("MQTT TLS with %s failed: %s", self.cfg.url, exc)
            return False
        except (OSError, ValueError) as exc:
            error("MQTT connect to %s failed: %s", self.cfg.url, exc)
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
                        error("MQTT broker %s closed the TLS connection before its CONNACK (%s); if it requires a "
                              "client certificate, set [mqtt] tls_cert_file and tls_key_file",
                              self.cfg.url, mqtt.error_string(rc))
                    elif stop_deadline is None and not self._refused:
                        error("MQTT connection to %s lost: %s", self.cfg.url, mqtt.error_string(rc))
                    break
                now = time.monotonic()
                if not self._session:
                    if now > deadline:
                        error("MQTT broker %s sent no CONNACK within %s s", self.cfg.url, CONNACK_TIMEOUT_S)
                        break
                    if self._stop.is_set():
                        break
                    continue
                if self._stop.is_set():
                    if stop_deadline is None:
                        stop_deadline = now + STOP_ACK_TIMEOUT_S
                        self._outbox.flush_acks(force=True)
                        info = client.publish(self.topics.available, "stopped", qos=1, retain=True)
                        self._stopped_mid = info.mid
                    if self._stopped_acked or now > stop_deadline:
                        client.disconnect()
                        break
                    continue
                self._commands_step(client)
                self._outbox.step(client, now)
                self._state_step(client, now)
        finally:
            was_up = self._session
            self._lost()
            self._client = None  # dropped: its sockets close, nothing of its queue is reused
        return was_up

    def _next_timer(self, now: float) -> float:
        """When the connected loop next has something to do without being woken (monotonic)."""
        return self._outbox.next_due(min(now + MAX_WAIT_S, self._next_state))

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
        self.connected.clear()
        self.subscribed.clear()
        self._session = False
        self._outbox.lost()
        self._stats.set("connected_since", None)

    # paho callbacks (run inside client.loop_*, i.e. on the network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if failed(reason_code):
            self._refused = True
            self._stats.error("MQTT broker %s refused the connection: %s", self.cfg.url, reason_code)
            return
        self._outbox.connected(getattr(properties, "ReceiveMaximum", None) if properties is not None else None)
        self.subscribed.clear()
        self._pending_subs = {self._subscribe(client, subs) for subs in self._intake.subscriptions(self._v5)}
        self._pending_subs.discard(-1)
        if not self._pending_subs:
            self.subscribed.set()
        self.connected.set()
        self._session = True
        self._stats.count("connects")
        self._stats.set("connected_since", ts_text(datetime.now(UTC)))
        client.publish(self.topics.state, self._state_payload(), qos=1, retain=True)
        client.publish(self.topics.available, "online", qos=1, retain=True)
        request = self._on_link(True) if self._on_link is not None else None
        if request is not None:  # after the SUBSCRIBEs: the answer finds the subscription in place
            client.publish(self.topics.passages_request, request, qos=1)
        self._next_state = time.monotonic() + self.cfg.state_interval_s
        log.info("MQTT connected to %s as %s", self.cfg.url, self.topics.gate)

    def _subscribe(self, client: mqtt.Client, subs: list[tuple[str, Any]]) -> int:
        """Send one SUBSCRIBE; its message id (-1: none went out)."""
        if self._v5:
            rc, mid = client.subscribe([(t, o if isinstance(o, SubscribeOptions) else SubscribeOptions(qos=o))
                                        for t, o in subs])
        else:
            rc, mid = client.subscribe(subs)
        return mid if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None else -1

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        if self.connected.is_set() and self._on_link is not None:
            self._on_link(False)
        self.connected.clear()
        self.subscribed.clear()
        if failed(reason_code) and not self._stop.is_set() and not self._refused:
            self._stats.error("MQTT disconnected from %s: %s", self.cfg.url, reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        bad = [str(rc) for rc in reason_codes if failed(rc)]
        if bad:
            self._stats.error("MQTT broker refused subscriptions: %s", ", ".join(bad))
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self.subscribed.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if mid == self._stopped_mid:
            self._stopped_acked = True
        self._outbox.on_publish(mid, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._intake.offer(msg)

    # steps

    def _commands_step(self, client: mqtt.Client) -> None:
        while True:
            try:
                topic, payload, qos, retain = self._commands.get_nowait()
            except queue.Empty:
                return
            client.publish(topic, payload, qos=qos, retain=retain)

    def refresh_state(self) -> None:
        """Publish the state document at the next turn (any thread): after a whitelist change."""
        self._refresh.set()
        self.wake()

    def _state_step(self, client: mqtt.Client, now: float) -> None:
        if self._refresh.is_set():
            self._refresh.clear()
            self._next_state = now
        if now >= self._next_state:
            self._next_state = now + self.cfg.state_interval_s
            client.publish(self.topics.state, self._state_payload(), qos=1, retain=True)
