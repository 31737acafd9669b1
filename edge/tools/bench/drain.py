"""`drain`: the gate's outbox drainer (SQLite -> QoS 1 -> PUBACK -> delete) vs a bare paho QoS 1 publish
loop with the same in-flight window, to the same local Mosquitto, one after the other in one run.

Also the pieces the sync and fault tests use: `fill_outbox` (a backlog of deny events in a real store),
`drain` (a gate's MqttSync emptying a store's outbox; with `linger` the gate-process stand-in) and
`drain_backlog` (fill + drain on a fresh store and broker, events/s in a `BenchResult`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.config.mqtt import MqttConfig
from edge.store import EventRecord, Store
from edge.sync.identity import load_identity
from edge.sync.mqtt import MqttSync
from edge.tools.bench.common import machine
from edge.tools.broker import Mosquitto

log = logging.getLogger(__name__)


def fill_outbox(store: Store, n: int, gate_id: str = "bench-gate", batch: int = 5_000) -> list[str]:
    """Record n deny events (each with its outbox row) in transactions of `batch`; their event ids."""
    ids: list[str] = []
    for start in range(0, n, batch):
        events = [EventRecord(ts=datetime.now(UTC), gate_id=gate_id, direction="in", decision="deny",
                              reasons=({"code": "unknown_face", "effect": "deny",
                                                        "params": {"seq": start + i}},))
                  for i in range(min(batch, n - start))]

        def write(s: Store, evs: list[EventRecord] = events) -> None:
            for ev in evs:
                s.record_event(ev)

        store.apply_in_transaction(write)
        ids.extend(ev.event_id for ev in events)
    return ids


def drain(db: Path, url: str, *, gate_id: str = "bench-gate", community: str = "bench",
          max_inflight: int = 20, timeout: float = 600.0, linger: bool = False) -> float:
    """Open the store at `db` and drain its outbox to the broker; seconds taken from connect to empty.
    With `linger` it keeps running after that (until killed): the gate-process stand-in of the tests."""
    store = Store.open(db)
    cfg = MqttConfig(enabled=True, url=url, max_inflight=max_inflight, reconnect_min_s=0.2, reconnect_max_s=1.0,
                     keepalive_s=10)
    key = load_identity(None, db.parent).key  # the gate's key in its data dir, as a gate keeps it
    sync = MqttSync(cfg, store, gate_id=gate_id, community=community, key=key)
    sync.start()
    try:
        if not sync.wait_connected(30):
            raise RuntimeError(f"no connection to {url}")
        t0 = time.monotonic()
        deadline = t0 + timeout
        while store.outbox_depth() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox not drained within {timeout} s")
            time.sleep(0.01)
        took = time.monotonic() - t0
        while linger:
            time.sleep(1)
        return took
    finally:
        sync.stop()
        store.close()


@dataclass(frozen=True)
class BenchResult:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def drain_backlog(n: int = 100_000, *, max_inflight: int = 20, workdir: Path | None = None) -> BenchResult:
    """Drain a backlog of n events from a real SQLite store to a local Mosquitto; events/s in the result."""
    with tempfile.TemporaryDirectory(prefix="edge-gate-bench-") as tmp:
        base = Path(workdir or tmp)
        db = base / "bench.sqlite"
        with Store.open(db) as store:
            t0 = time.monotonic()
            fill_outbox(store, n)
            log.info("filled the outbox with %s events in %.1f s", n, time.monotonic() - t0)
        with Mosquitto(base / "broker") as broker:
            seconds = drain(db, broker.url, max_inflight=max_inflight)
    result = BenchResult(n, seconds)
    log.info("drained %s events in %.2f s: %.0f events/s", n, seconds, result.rate)
    return result


def bench_drain(n: int = 100_000, max_inflight: int = 20) -> list[str]:
    ours = drain_backlog(n, max_inflight=max_inflight)
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker:
        bare = bare_paho_rate(broker.port, n, max_inflight)
    return [f"drain: {n} events, QoS 1, {max_inflight} in flight, local Mosquitto; {machine()}",
            f"  outbox drainer (store, PUBACK, delete): {ours.rate:8.0f} events/s (target >= 1000)",
            f"  bare paho publish loop (no store):      {bare:8.0f} events/s",
            f"  ratio drainer/bare: {ours.rate / bare:.2f}x"]


def bare_paho_rate(port: int, n: int, max_inflight: int) -> float:
    """Events/s of a plain paho QoS 1 publisher keeping at most `max_inflight` unacknowledged."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    window = threading.Semaphore(max_inflight)  # the same in-flight window as the drainer keeps
    done = threading.Semaphore(0)
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(max_inflight)

    def on_publish(*_args: object) -> None:
        window.release()
        done.release()

    client.on_publish = on_publish
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(30):  # publishing before CONNACK loses paho's on_publish for some messages
            raise RuntimeError("bare paho client: no CONNACK")
        payload = json.dumps({"schema": "edge-gate/event/1", "event_id": "0" * 26, "gate": "bench",
                              "decision": "deny", "reasons": [{"code": "unknown_face"}]})
        t0 = time.perf_counter()
        deadline = time.monotonic() + 600
        for i in range(n):  # at most max_inflight unacknowledged: paho's own queue of 100,000 loses PUBACK callbacks
            if not window.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"bare paho client: stuck after {i} of {n} publishes")
            client.publish("bench/bare/events", payload.replace("0" * 26, f"{i:026d}"), qos=1)
        for acked in range(n):
            if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"bare paho client: only {acked} of {n} PUBACKs in 600 s")
        seconds = time.perf_counter() - t0
    finally:
        client.loop_stop()
        client.disconnect()
    return n / seconds
