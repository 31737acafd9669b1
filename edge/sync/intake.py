"""The intake of what the broker sends the gate: whitelist pushes, the `whitelist/current` pointer and
the passage events of the community's other gates. The network thread only sorts each message into a
bounded queue (`offer`); a second thread (`mqtt-intake`) hands it to the whitelist applier or checks it
as a peer event, so a long whitelist transaction never stalls the connection."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from edge.protocol.payloads import EventMessage
from edge.protocol.topics import Topics
from edge.sync.stats import SyncStats

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
INTAKE_QUEUE = 256


class WhitelistHandler(Protocol):
    """What the intake needs from the whitelist side (edge.sync.whitelist.WhitelistApplier)."""

    def handle(self, raw: bytes, topic: str = "", retained: bool = False) -> JsonDict | None: ...

    def handle_current(self, raw: bytes) -> JsonDict | None: ...


class Intake:
    """`whitelist` answers pushes (`publish_ack` sends its acks); `on_peer_event` gets the validated
    passage events of the other gates. Both run on the intake thread."""

    def __init__(self, topics: Topics, stats: SyncStats, publish_ack: Callable[[JsonDict], None], *,
                 whitelist: WhitelistHandler | None = None,
                 on_peer_event: Callable[[JsonDict], None] | None = None) -> None:
        self.topics = topics
        self._stats = stats
        self._publish_ack = publish_ack
        self._whitelist = whitelist
        self._on_peer_event = on_peer_event
        self._queue: queue.Queue[tuple[str, str, bytes, bool] | None] = queue.Queue(INTAKE_QUEUE)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mqtt-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(timeout)

    def subscriptions(self, v5: bool) -> list[list[tuple[str, Any]]]:
        """The SUBSCRIBE packets to send on each connection, in order: the pushes and the peer events,
        then the `whitelist/current` pointer in a SUBSCRIBE of its own. The broker sends the retained
        community delta (a gate that missed only that one applies it) before the retained pointer, so
        the pointer is judged against the version after it and asks for a snapshot only when the gate
        is still behind."""
        first: list[tuple[str, Any]] = [(t, 1) for t in self.topics.whitelist_push] if self._whitelist else []
        if self._on_peer_event is not None:
            first.append((self.topics.peer_events, SubscribeOptions(qos=1, noLocal=True) if v5 else 1))
        packets = [first] if first else []
        if self._whitelist is not None:
            packets.append([(self.topics.whitelist_current, 1)])
        return packets

    def offer(self, msg: mqtt.MQTTMessage) -> None:
        """Queue a message from the broker (network thread; never blocks: a full queue drops it, logged)."""
        topic = msg.topic
        if topic == self.topics.whitelist_current:
            kind = "current"
        elif topic in self.topics.whitelist_push:
            kind = "push"
        elif topic.endswith("/events") and self.topics.gate_of(topic) not in (None, self.topics.gate):
            kind = "peer"
        else:
            return
        if not msg.payload and kind != "peer":  # an admin cleared a retained message: nothing to handle
            return
        try:
            self._queue.put_nowait((kind, topic, bytes(msg.payload), bool(msg.retain)))
        except queue.Full:
            self._stats.error("MQTT intake queue full: %s message on %s dropped", kind, topic)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, topic, payload, retained = item
            try:
                if kind == "peer":
                    self.peer_event(topic, payload)
                    continue
                assert self._whitelist is not None
                self._stats.count("pushes")
                ack = (self._whitelist.handle_current(payload) if kind == "current"
                       else self._whitelist.handle(payload, topic, retained=retained))
                if ack is not None:
                    self._publish_ack(ack)
            except Exception:  # bad input must never kill the intake thread
                log.exception("handling the %s message on %s failed", kind, topic)

    def peer_event(self, topic: str, payload: bytes) -> None:
        """Check one peer gate's passage event and hand it on; a malformed one, or one claiming another
        gate than its topic's, is counted and logged, never raised."""
        try:
            event = EventMessage.model_validate_json(payload)
        except ValidationError as exc:
            self._stats.count("peer_rejected")
            log.error("peer event on %s rejected: %s", topic, str(exc).splitlines()[0])
            return
        if event.gate_id != self.topics.gate_of(topic):
            self._stats.count("peer_rejected")
            log.error("peer event on %s claims gate %s; rejected", topic, event.gate_id)
            return
        self._stats.count("peer_events")
        if self._on_peer_event is not None:
            self._on_peer_event(event.model_dump(mode="json", by_alias=True))
