"""The outbox drainer's `max_inflight` cap and its order, observed on the wire: a tap between the gate and
a real Mosquitto reads every PUBLISH and PUBACK. While the tap keeps the broker's PUBACKs from the gate,
exactly `max_inflight` events go out and no more (the most ever outstanding on any connection is
checked at the end, over the whole run); the connection is then cut with that window unacknowledged,
and the replay on the new connection starts at the oldest unacknowledged row and keeps outbox order."""

from __future__ import annotations

import json

from sync_helpers import COMMUNITY, GATE, MqttTap, Subscriber, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)
CAP = 8
EVENTS = 600


def first_seen(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i)
    return list(seen)


def test_max_inflight_on_the_wire_and_order_across_a_reconnect(broker: Mosquitto, store: Store) -> None:
    assert broker.proc is not None
    ids = fill_outbox(store, EVENTS, gate_id=GATE)
    order = {eid: i for i, eid in enumerate(ids)}
    tap = MqttTap(broker.port, TOPICS.events)
    sub = Subscriber(broker.port, [TOPICS.events], client_id="server")
    cfg = MqttConfig(enabled=True, url=tap.url, max_inflight=CAP, reconnect_min_s=0.1, reconnect_max_s=0.2,
                     keepalive_s=30)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY)
    try:
        sync.start()
        wait_until(lambda: tap.published() >= 50, 10, "the drain to get going")
        tap.withhold_acks(0)  # no PUBACK reaches the gate from now on
        wait_until(lambda: tap.in_flight(0) == CAP and sync.health()["inflight"] == CAP, 10,
                   f"{CAP} publishes in flight without a PUBACK")
        tap.drop()  # the network fails mid-drain, with a full window unacknowledged
        wait_until(lambda: store.outbox_depth() == 0, 30, "the replay to drain the outbox")
        wait_until(lambda: len(first_seen([json.loads(p)["event_id"] for p in sub.on(TOPICS.events)])) == EVENTS,
                   10, "every event at the server")
    finally:
        sync.stop()
        tap.close()
        sub.close()

    assert len(tap.connections) >= 2 and sync.health()["connects"] >= 2
    assert tap.max_outstanding == CAP  # never more publishes without a PUBACK than the cap, on any connection
    payloads: dict[str, bytes] = {}
    for p in sub.on(TOPICS.events):
        assert payloads.setdefault(json.loads(p)["event_id"], p) == p  # a re-send is the same message
    received = [json.loads(p)["event_id"] for p in sub.on(TOPICS.events)]
    assert first_seen(received) == ids  # the server sees the outbox order; re-sends only repeat
    sent = [[order[json.loads(p)["event_id"]] for _pid, p in conn] for conn in tap.connections]
    for rows in sent:
        assert rows == sorted(rows) and len(set(rows)) == len(rows)  # each connection in outbox order, once
    first, second = sent[0], sent[1]
    unacked = [order[json.loads(p)["event_id"]] for pid, p in tap.connections[0] if pid not in tap.acked[0]]
    assert unacked, "the cut left nothing unacknowledged: not mid-drain"
    assert second[0] <= min(unacked)  # the replay starts at (or before) the oldest unacknowledged row
    assert set(second) >= set(unacked) and max(first) < len(ids) - 1
    duplicates = len(received) - len(ids)
    print(f"cap {CAP}: {len(tap.connections)} connections, {duplicates} re-sent after the cut")
