"""The intake of what the broker sends the gate: whitelist pushes, the `whitelist/current` pointer and
the passage events of the community's other gates (and the Home Assistant bridge's topics, handed to
their `routes`). The network thread only sorts each message into a
bounded queue (`offer`); a second thread (`mqtt-intake`) hands it to the whitelist applier or checks it
as a peer event, so a long whitelist transaction never stalls the connection.

Under a flood the queue fills. A signed push is never shed for junk: when the queue is full, the
network thread checks the new push's signature itself, and a push that verifies takes the place of
the oldest message not known to be good. Whatever is shed is counted (`intake_shed`) and alarmed at
most once a minute. Peer events are accepted only from member gates, signed by their key, not dated
in the future; the rest are counted (`peer_rejected`) and raise one `forged_message` alarm a minute
(the first refusal's reason in its details, and how many were refused since the last alarm).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from edge.protocol.payloads import EventMessage, HubState, Passages
from edge.protocol.signing import SignatureError, verify
from edge.protocol.topics import Topics
from edge.sync.members import MemberGates
from edge.sync.stats import SyncStats
from edge.sync.throttle import Throttle

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
INTAKE_QUEUE = 256
QUICK_CHECK_MAX_BYTES = 1 << 20  # a full queue: larger pushes are shed unchecked (the gate re-asks)
ALARM_EVERY_S = 60.0
TICK_S = 1.0
AlarmSink = Callable[[str, str, str, JsonDict], None]  # kind, severity, message, details


class WhitelistHandler(Protocol):
    """What the intake needs from the whitelist side (edge.sync.whitelist.WhitelistApplier)."""

    def handle(self, raw: bytes, topic: str = "", retained: bool = False) -> JsonDict | None: ...

    def handle_current(self, raw: bytes) -> JsonDict | None: ...

    def authentic(self, raw: bytes) -> bool: ...

    def tick(self) -> list[JsonDict]: ...


@dataclass
class _Item:
    kind: str  # push, current, peer, hub, passages, route
    topic: str
    payload: bytes
    retained: bool
    good: bool = False  # its signature was checked on arrival


class Intake:
    """`whitelist` answers pushes (`publish_ack` sends its acks); `on_peer_event` gets the verified
    passage events of the member gates; `alarm` records alarms. All of them run on the intake thread
    (`alarm` also on the network thread, for shedding)."""

    def __init__(self, topics: Topics, stats: SyncStats, publish_ack: Callable[[JsonDict], None], *,
                 whitelist: WhitelistHandler | None = None,
                 on_peer_event: Callable[[JsonDict], None] | None = None,
                 members: MemberGates | None = None, alarm: AlarmSink | None = None,
                 max_clock_skew_s: float = 120.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 capacity: int = INTAKE_QUEUE, on_hub_state: Callable[[HubState | None], None] | None = None,
                 hub_keys: list[Any] | None = None, on_passages: Callable[[Passages], None] | None = None,
                 routes: Mapping[str, Callable[[bytes], None]] | None = None) -> None:
        """`routes`: more topics to subscribe to, each with the handler of its messages (intake thread;
        the Home Assistant bridge's status and button topics)."""
        self.topics = topics
        self._routes = dict(routes or {})
        self._stats = stats
        self._publish_ack = publish_ack
        self._whitelist = whitelist
        self._on_peer_event = on_peer_event
        self.members = members if members is not None else MemberGates()
        self._alarm = alarm
        self._skew = timedelta(seconds=max_clock_skew_s)
        self._clock = clock
        self._capacity = capacity
        self._on_hub_state = on_hub_state
        self._on_passages = on_passages
        self._hub_keys = list(hub_keys or [])
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._throttle = Throttle(ALARM_EVERY_S)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mqtt-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
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
        if self._on_hub_state is not None:
            first.append((self.topics.hub_state, 1))
        if self._on_passages is not None:
            first.append((self.topics.passages, 1))
        first.extend((topic, 1) for topic in self._routes)
        packets = [first] if first else []
        if self._whitelist is not None:
            packets.append([(self.topics.whitelist_current, 1)])
        return packets

    # ------------------------------------------------------------------------------ network thread

    def offer(self, msg: mqtt.MQTTMessage) -> None:
        """Queue a message from the broker (never blocks; see the module doc for a full queue)."""
        topic = msg.topic
        if topic in self._routes:
            kind = "route"
        elif topic == self.topics.whitelist_current:
            kind = "current"
        elif topic == self.topics.hub_state:
            kind = "hub"
        elif topic == self.topics.passages:
            kind = "passages"
        elif topic in self.topics.whitelist_push:
            kind = "push"
        elif topic.endswith("/events") and self.topics.gate_of(topic) not in (None, self.topics.gate):
            kind = "peer"
        else:
            return
        if not msg.payload and kind not in ("peer", "hub", "route"):  # a cleared retained message: nothing to do
            return
        item = _Item(kind, topic, bytes(msg.payload), bool(msg.retain))
        with self._cond:
            if len(self._items) < self._capacity:
                self._items.append(item)
                self._cond.notify()
                return
        shed = item
        if kind == "push" and self._whitelist is not None and len(item.payload) <= QUICK_CHECK_MAX_BYTES \
                and self._whitelist.authentic(item.payload):
            item.good = True
            with self._cond:
                for i, old in enumerate(self._items):
                    if not old.good:
                        del self._items[i]
                        self._items.append(item)
                        self._cond.notify()
                        shed = old
                        break
        self._shed(shed)

    def _shed(self, item: _Item) -> None:
        self._stats.count("intake_shed")
        held = self._throttle.hit("intake_shed")
        if held is None:
            return
        what = "a signed push" if item.good else f"a {item.kind} message"
        self._stats.error("MQTT intake queue full: %s on %s shed (%s more since the last report)", what,
                          item.topic, held)
        if self._alarm is not None:
            self._alarm("intake_shed", "high" if item.good else "warning",
                        f"incoming MQTT messages shed under a flood ({held + 1} since the last report)",
                        {"topic": item.topic, "kind": item.kind, "signed_push": item.good,
                         "dropped_since_last": held + 1})

    # ------------------------------------------------------------------------------ intake thread

    def _next(self) -> _Item | None:
        """The next message, or None after TICK_S without one; raises StopIteration once stopped."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(TICK_S)
            if self._closed:
                raise StopIteration
            return self._items.popleft() if self._items else None

    def _loop(self) -> None:
        while True:
            try:
                item = self._next()
            except StopIteration:
                return
            try:
                if item is None:
                    self._tick()
                elif item.kind == "peer":
                    self.peer_event(item.topic, item.payload)
                elif item.kind == "hub":
                    self.hub_state(item.payload)
                elif item.kind == "passages":
                    self.passages(item.payload)
                elif item.kind == "route":
                    self._routes[item.topic](item.payload)
                else:
                    assert self._whitelist is not None
                    self._stats.count("pushes")
                    ack = (self._whitelist.handle_current(item.payload) if item.kind == "current"
                           else self._whitelist.handle(item.payload, item.topic, retained=item.retained))
                    if ack is not None:
                        self._publish_ack(ack)
            except Exception:  # bad input must never kill the intake thread
                log.exception("handling the %s message on %s failed", item.kind if item else "timer",
                              item.topic if item else "-")

    def _tick(self) -> None:
        """Once a second while idle: snapshot re-asks and chunk timeouts (the applier's timers)."""
        if self._whitelist is not None:
            for ack in self._whitelist.tick():
                self._publish_ack(ack)

    def hub_state(self, payload: bytes) -> None:
        """The hub's heartbeat: handed on when signed by an admin key; an empty payload (the hub's last
        will cleared it) hands on None."""
        if self._on_hub_state is None:
            return
        if not payload:
            self._on_hub_state(None)
            return
        try:
            data = json.loads(payload)
            state = HubState.model_validate(data)
            verify(data, self._hub_keys)
        except (ValueError, ValidationError, SignatureError) as exc:
            log.error("hub state refused: %s", str(exc).splitlines()[0][:300])
            return
        if state.community != self.topics.community:
            log.error("hub state for community %s refused", state.community)
            return
        self._on_hub_state(state)

    def passages(self, payload: bytes) -> None:
        """The hub's backfill of the other gates' grants: handed on when signed by an admin key."""
        if self._on_passages is None:
            return
        try:
            data = json.loads(payload)
            answer = Passages.model_validate(data)
            verify(data, self._hub_keys)
        except (ValueError, ValidationError, SignatureError) as exc:
            log.error("passages from the hub refused: %s", str(exc).splitlines()[0][:300])
            return
        if (answer.community, answer.gate) != (self.topics.community, self.topics.gate):
            log.error("passages for %s/%s refused", answer.community, answer.gate)
            return
        self._on_passages(answer)

    def peer_event(self, topic: str, payload: bytes) -> None:
        """Check one peer gate's passage event and hand it on; anything not from a member gate, not
        signed by its key, malformed, or dated in the future is counted and alarmed, never raised."""
        gate = self.topics.gate_of(topic) or "?"
        try:
            data = json.loads(payload)
            event = EventMessage.model_validate(data)
        except (ValueError, ValidationError) as exc:  # ValidationError is a ValueError too
            self._refuse(topic, gate, "malformed", str(exc).splitlines()[0])
            return
        if event.gate_id != gate:
            self._refuse(topic, gate, "gate_mismatch", f"event claims gate {event.gate_id}")
            return
        keys = self.members.key(gate)
        if not keys:
            self._refuse(topic, gate, "unlisted_gate", "not a member gate of the signed whitelist")
            return
        try:
            verify(data, keys)
        except SignatureError as exc:
            self._refuse(topic, gate, "bad_signature", str(exc))
            return
        if event.ts > self._clock() + self._skew:
            self._refuse(topic, gate, "future_timestamp", f"dated {event.ts.isoformat()}, beyond the "
                         f"{self._skew.total_seconds():g} s clock-skew allowance")
            return
        self._stats.count("peer_events")
        if self._on_peer_event is not None:
            self._on_peer_event(event.model_dump(mode="json", by_alias=True))

    def _refuse(self, topic: str, gate: str, reason: str, detail: str) -> None:
        self._stats.count("peer_rejected")
        held = self._throttle.hit("forged_message")  # one alarm a minute whatever the mix of reasons
        if held is None:
            return
        log.error("peer event on %s refused (%s): %s; %s more refused since the last report", topic, reason,
                  detail[:300], held)
        if self._alarm is not None:
            self._alarm("forged_message", "high", f"peer event from {gate} refused ({reason})",
                        {"reason": reason, "gate_id": gate[:64], "topic": topic[:200], "dropped_since_last": held + 1})
