"""The gate side of a fleet run: one worker process holding several simulated gates (`SimGate`: its own
SQLite store, StoreWriter thread, MqttSync with a WhitelistApplier; a camera-less event source), the
generator that makes them emit at the run's rate, and `worker_main`, the process's conversation with the
parent over a pipe (ready, go, drained, stop, done)."""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edge.config.mqtt import MqttConfig
from edge.config.vision import VisionSection
from edge.lane import Whitelist
from edge.models import load_manifest
from edge.records import parse_ts
from edge.store import EventRecord, Passage, Store
from edge.store.writer import StoreWriter
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.procstat import own_cpu_s, peak_rss_mb
from edge.tools.stats import summary

JsonDict = dict[str, Any]
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class GateSpec:
    gate_id: str
    community: str


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    gates: tuple[GateSpec, ...]
    url: str
    prefix: str
    admin_key: str  # public key text for the gates' config
    data_dir: str
    rate: float
    peer_events: bool
    drain_timeout: float
    seed: int


class SimGate:
    """One gate: store, writer thread, MqttSync with the whitelist applier; a camera-less event source."""

    def __init__(self, spec: GateSpec, w: WorkerSpec, model_id: str) -> None:
        self.gate_id, self.model_id = spec.gate_id, model_id
        self.store = Store.open(Path(w.data_dir) / f"{spec.gate_id}.sqlite")
        self.writer = StoreWriter(self.store, name=f"writer-{spec.gate_id}")
        cfg = MqttConfig(enabled=True, url=w.url, topic_prefix=w.prefix, admin_public_keys=[w.admin_key])
        self.whitelist = Whitelist.load(self.store, model_id)
        applier = WhitelistApplier(self.store, None, model_id, cfg.trusted_keys(), community=spec.community,
                                   gate_id=spec.gate_id, on_applied=self._applied)
        self.sync = MqttSync(cfg, self.store, gate_id=spec.gate_id, community=spec.community, whitelist=applier,
                             on_peer_event=self._peer_event if w.peer_events else None)
        self.generated: list[str] = []
        self.store_errors = 0
        self.peer_passages = 0

    def _applied(self, version: int) -> None:  # the gate's gallery reload after a push
        self.whitelist = Whitelist.load(self.store, self.model_id)

    def _peer_event(self, event: JsonDict) -> None:
        person = event.get("person_id")
        if event.get("decision") == "grant" and isinstance(person, str):
            self.peer_passages += 1
            self.writer.submit(self.store.record_passage, Passage(person, parse_ts(str(event["ts"])),
                                                                  str(event["gate_id"]), "in"))

    def _stored(self, future: Any) -> None:
        if future.exception() is not None:
            self.store_errors += 1

    def emit(self, rng: random.Random, n: int) -> None:
        """One decision, as the lane records it: event + outbox row via the writer."""
        persons = list(self.whitelist.persons)
        if persons and rng.random() < 0.8:
            event = EventRecord(ts=datetime.now(UTC), gate_id=self.gate_id, direction="in", decision="grant",
                                person_id=rng.choice(persons), reasons=({"code": "ok"},),
                                temperature={"object_c": round(rng.uniform(36.2, 37.1), 2), "ambient_c": 24.0},
                                scores={"score": round(rng.uniform(0.55, 0.9), 4), "margin": 0.2, "votes": 2,
                                        "window": 3, "track_id": n, "latency_ms": 70.0, "face_px": 140.0})
        else:
            event = EventRecord(ts=datetime.now(UTC), gate_id=self.gate_id, direction="in", decision="deny",
                                reasons=({"code": "unknown_face"},), scores={"track_id": n})
        self.writer.submit(self.store.record_event, event).add_done_callback(self._stored)  # its commit wakes the sync
        self.generated.append(event.event_id)

    def drained(self) -> bool:
        return self.writer.pending == 0 and self.store.outbox_depth() == 0


def gate_model_id() -> str:
    """The model id a default gate stores with its templates (as FaceEngine names it)."""
    file = VisionSection().embedder.file
    spec = load_manifest().by_file(file)
    return spec.name if spec else Path(file).stem


def _generate(gates: list[SimGate], rate: float, start: float, end: float, seed: int) -> list[float]:
    """Each gate emits at `rate` events/s (periods jittered 0.5-1.5x) from `start` to `end` (monotonic);
    returns how late each event was (s) against its schedule."""
    rng = random.Random(seed)
    period = 1.0 / rate
    heap = [(start + rng.uniform(0, period), i) for i in range(len(gates))]
    heapq.heapify(heap)
    lags: list[float] = []
    n = 0
    while heap and heap[0][0] < end:
        due, i = heap[0]
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.05))
            continue
        heapq.heapreplace(heap, (due + period * rng.uniform(0.5, 1.5), i))
        lags.append(now - due)
        n += 1
        gates[i].emit(rng, n)
    return lags


def worker_main(conn: Connection, w: WorkerSpec) -> None:
    """A worker process: set up its gates, report ready, generate on "go", drain, report, stop on "stop"."""
    logging.basicConfig(level=logging.WARNING, format=f"w{w.index} %(levelname)s %(name)s: %(message)s")
    model_id = gate_model_id()
    gates = [SimGate(g, w, model_id) for g in w.gates]
    for g in gates:
        g.sync.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    connected = sum(g.sync.wait_connected(max(0.0, deadline - time.monotonic())) for g in gates)
    conn.send(("ready", {"connected": connected, "threads": threading.active_count()}))
    msg = conn.recv()
    if msg[0] != "go":  # the parent gave up before the start
        conn.send(("done", {}))
        return
    start_wall, seconds = float(msg[1]), float(msg[2])
    start = time.monotonic() + (start_wall - time.time())
    cpu0 = own_cpu_s()
    threads = threading.active_count()
    lags = _generate(gates, w.rate, start, start + seconds, w.seed)
    t_stop = time.monotonic()
    while time.monotonic() - t_stop < w.drain_timeout and not all(g.drained() for g in gates):
        time.sleep(0.1)
    drain_s = time.monotonic() - t_stop
    per_gate = {g.gate_id: {"generated": len(g.generated), "outbox_left": g.store.outbox_depth(),
                            "writer_pending": g.writer.pending, "store_errors": g.store_errors,
                            "peer_passages": g.peer_passages, "sync": g.sync.health()} for g in gates}
    conn.send(("drained", {"ids": [i for g in gates for i in g.generated], "gates": per_gate, "drain_s": drain_s,
                           "lag_ms": summary([x * 1000 for x in lags]), "cpu_s": own_cpu_s() - cpu0,
                           "threads": threads, "rss_mb": peak_rss_mb()}))
    conn.recv()  # "stop": the parent has its acks and events
    with ThreadPoolExecutor(max_workers=max(1, len(gates))) as pool:
        list(pool.map(lambda g: g.sync.stop(), gates))
    for g in gates:
        g.writer.close(10)
    conn.send(("done", {}))
