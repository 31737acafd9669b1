"""The outbox drainer against a real Mosquitto: delete on PUBACK only, order, replay after a broker
restart during traffic and after the gate process is killed with SIGKILL mid-drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sync_helpers import COMMUNITY, GATE, GATE_KEY, Subscriber, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import AlarmMessage, EventMessage
from edge.protocol.topics import Topics
from edge.store import AlarmRecord, Store
from edge.sync.mqtt import MqttSync
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


def config(url: str, **over: object) -> MqttConfig:
    return MqttConfig.model_validate({"enabled": True, "url": url, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                                      "keepalive_s": 10, **over})


@pytest.fixture
def make_sync(store: Store) -> Iterator[list[MqttSync]]:
    made: list[MqttSync] = []
    yield made
    for s in made:
        s.stop()


def start(made: list[MqttSync], cfg: MqttConfig, store: Store) -> MqttSync:
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, key=GATE_KEY)  # one gate: one key
    made.append(sync)
    sync.start()
    return sync


def event_ids(sub: Subscriber) -> list[str]:
    return [json.loads(p)["event_id"] for p in sub.on(TOPICS.events)]


def assert_no_loss(sub: Subscriber, expected: list[str]) -> Counter[str]:
    payloads: dict[str, bytes] = {}
    for p in sub.on(TOPICS.events):
        eid = json.loads(p)["event_id"]
        assert payloads.setdefault(eid, p) == p, f"duplicate {eid} with a different payload"
    assert set(payloads) == set(expected), f"{len(set(expected) - set(payloads))} events lost"
    return Counter(event_ids(sub))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_pubacked_events_and_alarms_leave_the_outbox_in_order(
        broker: Mosquitto, store: Store, make_sync: list[MqttSync], protocol: str) -> None:
    ids = fill_outbox(store, 300, gate_id=GATE)
    store.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="fever", severity="high", message="38.4 C",
                                   gate_id=GATE))
    sub = Subscriber(broker.port, [TOPICS.events, TOPICS.alarms])
    try:
        sync = start(make_sync, config(broker.url, protocol=protocol), store)
        wait_until(lambda: store.outbox_depth() == 0, 20, "the outbox to drain")
        wait_until(lambda: len(sub.on(TOPICS.events)) >= 300 and sub.on(TOPICS.alarms), 10, "delivery")
        assert event_ids(sub) == ids  # one connection, no failure: exactly once, in outbox order
        for p in sub.on(TOPICS.events):
            EventMessage.model_validate_json(p)  # signed, closed  # what is published matches the documented schema
        assert AlarmMessage.model_validate_json(sub.on(TOPICS.alarms)[0]).kind == "fever"
        assert all(ev.synced for ev in store.events(limit=1000))
        health = sync.health()
        assert health["connected"] and health["acked"] == 301 and health["outbox_depth"] == 0
        # rows written later are drained too (the drainer polls; notify() makes it immediate)
        more = fill_outbox(store, 5, gate_id=GATE)
        sync.notify()
        wait_until(lambda: event_ids(sub)[-5:] == more and store.outbox_depth() == 0, 10, "late events")
    finally:
        sub.close()


def test_rows_stay_while_the_broker_is_unreachable(tmp_path: Path, store: Store, make_sync: list[MqttSync]) -> None:
    broker = Mosquitto(tmp_path / "broker")  # port chosen, broker not started
    fill_outbox(store, 50, gate_id=GATE)
    sync = start(make_sync, config(broker.url), store)
    wait_until(lambda: "connect" in (sync.health()["last_error"] or ""), 20, "a failed connection attempt")
    assert not sync.connected and store.outbox_depth() == 50
    with broker:
        wait_until(lambda: store.outbox_depth() == 0, 20, "drain after the broker came up")


def test_broker_restart_during_traffic_loses_nothing(tmp_path: Path, store: Store,
                                                     make_sync: list[MqttSync]) -> None:
    # The subscriber stands in for the server: a persistent session on a broker that saves it on a clean
    # stop. Without that the broker itself (not the gate) drops messages nobody is subscribed to yet.
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    written: list[str] = []
    sub = Subscriber(broker.port, [TOPICS.events], client_id="server", persistent=True)
    try:
        sync = start(make_sync, config(broker.url), store)
        assert sync.wait_connected(10)
        done = threading.Event()

        def produce() -> None:  # the vision loop keeps deciding: 2,000 events over ~2 s
            for _ in range(100):
                written.extend(fill_outbox(store, 20, gate_id=GATE))
                sync.notify()
                time.sleep(0.02)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        wait_until(lambda: len(sub.on(TOPICS.events)) >= 400, 20, "traffic before the outage")
        broker.stop()
        wait_until(lambda: not sync.connected, 20, "the gate to notice the broker is gone")
        broker.start()
        producer.join(30)
        assert done.is_set()
        wait_until(lambda: store.outbox_depth() == 0, 30, "the outbox to drain after the restart")
        wait_until(lambda: set(event_ids(sub)) >= set(written), 20, "every event at the subscriber")
        counts = assert_no_loss(sub, written)
        assert len(written) == 2000
        assert sync.health()["connects"] >= 2
        print(f"duplicates after the restart: {sum(c - 1 for c in counts.values())}")
    finally:
        sub.close()
        broker.stop()


def _gate_process(db: Path, url: str, linger: bool) -> subprocess.Popen[bytes]:
    code = ("import logging, sys; logging.basicConfig(level=logging.WARNING, stream=sys.stderr)\n"
            "from pathlib import Path\nfrom edge.tools.bench.drain import drain\n"
            f"drain(Path({str(db)!r}), {url!r}, gate_id={GATE!r}, community={COMMUNITY!r}, linger={linger})\n")
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


def test_gate_killed_mid_drain_delivers_everything_after_restart(tmp_path: Path, broker: Mosquitto) -> None:
    db = tmp_path / "gate.sqlite"
    with Store.open(db) as s:
        ids = fill_outbox(s, 6000, gate_id=GATE)
    sub = Subscriber(broker.port, [TOPICS.events, TOPICS.available])
    watcher = Store.open(db)
    try:
        proc = _gate_process(db, broker.url, linger=True)
        wait_until(lambda: watcher.outbox_depth() <= 4500, 60, "the first gate process to drain some")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        left = watcher.outbox_depth()
        assert 0 < left < 6000, "the kill was not mid-drain"
        wait_until(lambda: sub.on(TOPICS.available)[-1:] == [b"offline"], 10, "the LWT after SIGKILL")

        proc = _gate_process(db, broker.url, linger=False)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert watcher.outbox_depth() == 0
        wait_until(lambda: set(event_ids(sub)) >= set(ids), 10, "every event at the subscriber")
        assert_no_loss(sub, ids)
        assert sub.on(TOPICS.available) == [b"online", b"offline", b"online", b"stopped"]
    finally:
        watcher.close()
        sub.close()


def test_refused_puback_keeps_the_rows_until_the_broker_accepts(tmp_path: Path, store: Store,
                                                                make_sync: list[MqttSync]) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite edge-gate/+/+/available\ntopic readwrite edge-gate/+/+/state\n")
    broker = Mosquitto(tmp_path / "broker", extra_config=[f"acl_file {acl}"])
    with broker:
        ids = fill_outbox(store, 30, gate_id=GATE)
        sync = start(make_sync, config(broker.url), store)
        # mosquitto 2.0 answers PUBACK 135 'Not authorized' and then drops the connection; when the drop wins the
        # race (the gate still writing, a broken pipe) the PUBACK is never read: either way the rows are refused
        def refused() -> bool:
            health = sync.health()
            return bool(health["failed"] >= 2 or health["connects"] >= 3)
        wait_until(refused, 30, "the broker refusing the rows (PUBACK 135, or the connection dropped) again")
        assert store.outbox_depth() == 30  # refused rows stay
        sub = Subscriber(broker.port, [TOPICS.events])
        acl.write_text("topic readwrite edge-gate/#\n")
        broker.reload()
        wait_until(lambda: store.outbox_depth() == 0, 10, "the rows to go once the broker accepts them")
        wait_until(lambda: set(event_ids(sub)) == set(ids), 5, "delivery")
        sub.close()
