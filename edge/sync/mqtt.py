"""MqttSync: the facade the gate uses for its MQTT side. It wires the parts together and owns their
life: the network thread (`edge.sync.link`: connection, availability, the retained state document),
the outbox drainer (`edge.sync.outbox`: QoS 1, bounded in-flight, delete on PUBACK only) and the
intake of whitelist pushes and peer-gate passage events (`edge.sync.intake`, on its own thread).
Events and their outbox rows are written in one transaction by the store; the store hands each
commit's rows over here (`Store.watch_outbox`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from drivers.heartbeat import Heartbeat
from edge import __version__
from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import STATE_SCHEMA, Passages, StateMessage
from edge.protocol.signing import SigningKey
from edge.protocol.topics import Topics
from edge.records import ts_text
from edge.store import OutboxRow, Store, StoreError
from edge.sync.backfill import Backfill
from edge.sync.ha_bridge import HaBridge
from edge.sync.identity import seal
from edge.sync.intake import AlarmSink, Intake, WhitelistHandler
from edge.sync.link import Link
from edge.sync.members import MemberGates
from edge.sync.outbox import OutboxDrainer
from edge.sync.stats import SyncStats

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
_PLACEHOLDER = {"alg": "ed25519", "key_id": "0" * 16, "value": ""}  # validating before signing

__all__ = ["MqttSync", "WhitelistHandler"]


class MqttSync:
    """Start with `start()`, stop with `stop()`. `state` returns the gate's part of the retained health
    document; `whitelist` answers pushes (its acks are published on `whitelist/ack`); `on_peer_event`
    gets the validated passage events of the community's other gates. Both run on the intake thread."""

    def __init__(self, cfg: MqttConfig, store: Store, *, gate_id: str, community: str,
                 state: Callable[[], JsonDict] | None = None, whitelist: WhitelistHandler | None = None,
                 on_peer_event: Callable[[JsonDict], None] | None = None, password: str | None = None,
                 key: SigningKey | None = None, members: MemberGates | None = None,
                 alarm: AlarmSink | None = None, on_hub_state: Callable[[Any], None] | None = None,
                 on_passages: Callable[[Any], None] | None = None, ha: HaBridge | None = None) -> None:
        """`key`: the gate's own key, which signs everything it publishes (edge.sync.identity); without
        one a key made for this process only is used (its peers will not know it: tools and tests).
        `ha`: the Home Assistant bridge (edge.sync.ha_bridge), published on each connect."""
        self.cfg = cfg
        if key is None:
            log.warning("no gate key given: signing with a key made for this run only")
            key = SigningKey.generate()
        self.key = key
        self.store = store
        self.gate_id = gate_id
        self.topics = Topics(cfg.topic_prefix, community, gate_id)
        self._state_fn = state
        self._stop = threading.Event()
        self.stats = SyncStats(logging.getLogger("edge.sync"))
        self.outbox = OutboxDrainer(cfg, store, self.topics, self.stats, self._stop, key)
        self.intake = Intake(self.topics, self.stats, self.publish_ack, whitelist=whitelist,
                             on_peer_event=on_peer_event, members=members, alarm=alarm,
                             max_clock_skew_s=cfg.max_clock_skew_s, on_hub_state=on_hub_state,
                             hub_keys=cfg.trusted_keys(),
                             on_passages=self._passages if on_passages is not None else None,
                             routes=ha.routes() if ha is not None else None)
        self._on_passages = on_passages
        self.backfill = (Backfill(key, gate_id, cfg.backfill_hours)
                         if on_passages is not None and cfg.backfill_hours > 0 else None)
        self.link = Link(cfg, self.topics, self.stats, self._stop, outbox=self.outbox, intake=self.intake,
                         state_payload=self._state_payload,
                         password=password if password is not None else cfg.password(),
                         on_link=self._on_link if self.backfill is not None or ha is not None else None)
        self.ha = ha
        if ha is not None:
            ha.attach(self.link.publish, lambda: self.connected)
        self._state_warned = False
        self._unwatch: Callable[[], None] | None = None
        self._started = False

    @property
    def heartbeat(self) -> Heartbeat:
        """The network thread's heartbeat; the gate's watchdog checks it."""
        return self.link.heartbeat

    def start(self) -> None:
        if self._started:
            raise RuntimeError("MqttSync already started")
        self._started = True
        self._unwatch = self.store.watch_outbox(self._committed)
        self.intake.start()
        self.outbox.start()
        self.link.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `available`=`stopped`, flush acknowledged rows, disconnect, join the threads."""
        self._stop.set()
        self.link.wake()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self.link.join(timeout)
        self.intake.stop(timeout)
        self.outbox.join(timeout)
        if not self.running:
            self.link.close()

    def notify(self) -> None:
        """New outbox rows were written: drain now instead of at the next poll."""
        self.outbox.notify()
        self.link.wake()

    def publish_ack(self, ack: JsonDict) -> None:
        """Publish a whitelist ack (retained, QoS 1) as soon as the gate is connected, then the state
        document again (its whitelist part has changed)."""
        self.link.publish(self.topics.whitelist_ack, seal(self.key, ack), 1, True)
        self.link.refresh_state()

    def _on_link(self, up: bool) -> str | None:
        """The link came up or went down (network thread): Home Assistant's configs, the backfill request."""
        if self.ha is not None:
            self.ha.on_link(up)
        return self.backfill.on_link(up) if self.backfill is not None else None

    def _passages(self, answer: Passages) -> None:
        """The hub's backfill (intake thread): to the gate, then the next request if there is more."""
        if self._on_passages is not None:
            self._on_passages(answer)
        more = self.backfill.next_request(answer) if self.backfill is not None else None
        if more is not None:
            self.link.publish(self.topics.passages_request, more, 1, False)

    def _committed(self, rows: list[OutboxRow]) -> None:
        """The store committed these outbox rows (on the writing thread): hand them to the drainer, wake it."""
        self.outbox.committed(rows, online=self.connected)
        self.link.wake()

    @property
    def running(self) -> bool:
        """The network thread is alive (connected or not)."""
        return self.link.running

    @property
    def connected(self) -> bool:
        return self.link.connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Connected, with the broker's SUBACK for every subscription in: a message published from now on
        reaches the gate (being connected alone does not promise that)."""
        deadline = time.monotonic() + timeout
        return self.link.connected.wait(timeout) and self.link.subscribed.wait(max(0.0, deadline - time.monotonic()))

    def health(self) -> JsonDict:
        out = self.stats.snapshot()
        out["connected"] = self.connected
        out["inflight"] = self.outbox.inflight
        try:
            out["outbox_depth"] = self.store.outbox_depth()
        except StoreError as exc:
            out["outbox_depth"] = None
            out["last_error"] = f"store: {exc}"
        return out

    def _state_payload(self) -> str:
        """The retained state document: the gate's part (`state`), then the sync's (network thread)."""
        doc: JsonDict = {}
        if self._state_fn is not None:
            try:
                doc.update(self._state_fn())
            except Exception:  # a broken health source must not stop the sync: the sync part still goes
                log.exception("state callback failed")
        for key in ("gate_id", "mqtt", "panel"):  # the gate's names for `gate` and `sync`; the access panel's
            doc.pop(key, None)  # counters are the page's and /metrics' (edge-gate/state/2 has no `panel`)
        doc.update({"schema": STATE_SCHEMA, "gate": self.gate_id, "community": self.topics.community,
                    "ts": ts_text(datetime.now(UTC)), "software_version": __version__, "sync": self.health()})
        doc = json.loads(json.dumps(doc, default=str))
        try:
            StateMessage.model_validate({**doc, "signature": _PLACEHOLDER})
        except ValidationError as exc:  # a part reported something the protocol does not document
            if not self._state_warned:
                log.error("state document does not match edge-gate/state/2 (%s); sending the sync part only",
                          str(exc).splitlines()[0])
                self._state_warned = True
            doc = {k: doc[k] for k in ("schema", "gate", "community", "ts", "software_version", "sync")}
        return seal(self.key, doc)

    def _peer_event(self, topic: str, payload: bytes) -> None:
        """Check one peer gate's passage event as the intake thread does (see Intake.peer_event)."""
        self.intake.peer_event(topic, payload)
