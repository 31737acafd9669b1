"""The drainer is woken by the store, not by polling: a committed event goes out at once without
`notify()`, rows another connection wrote in between are not skipped, and an idle gate's network
thread sleeps (about one wake-up a second, not twenty)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sync_helpers import COMMUNITY, GATE, Subscriber, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.topics import Topics
from edge.store import EventRecord, OutboxRow, Store
from edge.sync import link as link_module
from edge.sync import outbox as outbox_module
from edge.sync.link import Link
from edge.sync.mqtt import MqttSync
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


def event(n: int) -> EventRecord:
    return EventRecord(ts=datetime.now(UTC), gate_id=GATE, direction="in", decision="deny",
                       reasons=({"code": "unknown_face"},), scores={"track_id": n})


@pytest.fixture
def sync(broker: Mosquitto, store: Store) -> Iterator[MqttSync]:
    cfg = MqttConfig.model_validate({"enabled": True, "url": broker.url, "reconnect_min_s": 0.1,
                                     "reconnect_max_s": 0.5, "keepalive_s": 10})
    s = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY)
    s.start()
    assert s.wait_connected(10)
    yield s
    s.stop()


def test_the_store_hands_committed_rows_to_watchers_and_never_rolled_back_ones(store: Store) -> None:
    seen: list[list[OutboxRow]] = []
    unwatch = store.watch_outbox(seen.append)
    kept = store.record_event(event(1))
    assert [[r.event_id for r in rows] for rows in seen] == [[kept]]
    assert seen[0][0] == store.pending_outbox(10)[0]  # exactly the row the table holds

    def one_bad_entry(s: Store) -> None:  # like a whitelist apply: one entry's savepoint fails
        s.record_event(event(2))
        with pytest.raises(RuntimeError):
            s.apply_in_transaction(lambda inner: (inner.record_event(event(3)), _fail()))
    store.apply_in_transaction(one_bad_entry)
    assert len(seen) == 2 and len(seen[1]) == 1  # the rolled-back savepoint's row is not handed over
    assert [r.seq for r in store.pending_outbox(10)] == [seen[0][0].seq, seen[1][0].seq]

    with pytest.raises(RuntimeError):
        store.apply_in_transaction(lambda s: (s.record_event(event(4)), _fail()))
    assert len(seen) == 2  # a rolled-back transaction hands over nothing

    unwatch()
    store.record_event(event(5))
    assert len(seen) == 2


def test_a_failing_watcher_does_not_fail_the_write(store: Store) -> None:
    def broken(rows: list[OutboxRow]) -> None:
        raise ValueError("watcher bug")
    store.watch_outbox(broken)
    eid = store.record_event(event(1))
    assert store.get_event(eid) is not None and store.outbox_depth() == 1


def _fail() -> None:
    raise RuntimeError("entry refused")


def test_a_committed_event_is_sent_at_once_without_notify(monkeypatch: pytest.MonkeyPatch, broker: Mosquitto,
                                                          store: Store, sync: MqttSync) -> None:
    """With the idle poll an hour away, a committed event can only go out because the commit woke the
    drainer: no wall-clock bound is needed to tell the two apart."""
    sub = Subscriber(broker.port, [TOPICS.events])
    try:
        monkeypatch.setattr(outbox_module, "IDLE_POLL_S", 3600.0)
        first = store.record_event(event(0))  # found by a wake-up or by a poll already due; then idle
        wait_until(lambda: any(json.loads(p)["event_id"] == first for p in sub.on(TOPICS.events)), 10, "event 0")
        wait_until(lambda: store.outbox_depth() == 0, 10, "the first row acknowledged and deleted")
        for n in range(1, 6):
            eid = store.record_event(event(n))
            wait_until(lambda eid=eid: any(json.loads(p)["event_id"] == eid for p in sub.on(TOPICS.events)),
                       30, f"event {n}, sent on the commit's wake-up (the next poll is an hour away)")
        wait_until(lambda: store.outbox_depth() == 0, 10, "the acknowledged rows to be deleted")
    finally:
        sub.close()


def test_rows_another_connection_wrote_in_between_are_not_skipped(broker: Mosquitto, store: Store,
                                                                  sync: MqttSync) -> None:
    """A second process (here: a second Store on the same file) writes rows the drainer is not told
    about; the rows this store commits after them arrive with a gap, so the drainer reads the table."""
    sub = Subscriber(broker.port, [TOPICS.events])
    other = Store.open(store.path)
    try:
        expected = [store.record_event(event(0))]
        wait_until(lambda: store.outbox_depth() == 0, 5, "the first event")
        expected += [other.record_event(event(n)) for n in (1, 2)]  # no hand-over for these
        expected.append(store.record_event(event(3)))  # handed over at once, after a gap
        wait_until(lambda: len(sub.on(TOPICS.events)) >= 4, 5, "all four events")
        got = [json.loads(p)["event_id"] for p in sub.on(TOPICS.events)]
        assert got == expected  # in outbox order, none skipped, none twice
        wait_until(lambda: store.outbox_depth() == 0, 5, "the outbox to empty")
    finally:
        other.close()
        sub.close()


def test_an_idle_gate_sleeps_between_keepalives(monkeypatch: pytest.MonkeyPatch, broker: Mosquitto,
                                                store: Store) -> None:
    turns = 0
    pump = Link._pump

    def counted(self: Link, *args: object) -> object:
        nonlocal turns
        turns += 1
        return pump(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Link, "_pump", counted)
    cfg = MqttConfig.model_validate({"enabled": True, "url": broker.url, "keepalive_s": 10, "state_interval_s": 60})
    s = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY)
    states = Subscriber(broker.port, [TOPICS.state], client_id="state-reader")
    s.start()
    try:
        assert s.wait_connected(10)
        wait_until(lambda: any(not retained for _t, _p, retained in states.messages), 10,
                   "the first state document (after the CONNACK and SUBACKs)")
        before, t0 = turns, time.monotonic()
        time.sleep(3.0)
        rate = (turns - before) / (time.monotonic() - t0)
        assert rate <= 2.5, f"{rate:.1f} network-loop turns per second while idle"
        assert link_module.MAX_WAIT_S <= 1.0  # and it still looks at least once a second
        eid = store.record_event(event(1))  # and wakes at once when there is work
        wait_until(lambda: store.outbox_depth() == 0 and s.health()["acked"] >= 1, 10, f"{eid} to be sent")
    finally:
        s.stop()
        states.close()


def test_rows_committed_while_offline_are_not_held_in_memory(tmp_path: Path, store: Store) -> None:
    """A long outage must not grow the hand-over queue: offline, the rows stay only in the table."""
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    cfg = MqttConfig.model_validate({"enabled": True, "url": broker.url, "reconnect_min_s": 0.1,
                                     "reconnect_max_s": 0.3, "keepalive_s": 10})
    s = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY)
    s.start()
    try:
        assert s.wait_connected(10)
        broker.stop()
        wait_until(lambda: not s.connected, 10, "the gate to notice the broker is gone")
        ids = [store.record_event(event(n)) for n in range(300)]
        assert s.outbox.handed_over == 0 and store.outbox_depth() == 300
        broker.start()  # (a subscriber started now could miss what the gate sends before it subscribes)
        wait_until(lambda: store.outbox_depth() == 0, 20, "the backlog to drain")
        assert s.health()["acked"] >= len(ids)  # every row left the table only on the broker's PUBACK
    finally:
        s.stop()
        broker.stop()
