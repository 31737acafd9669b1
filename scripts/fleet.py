#!/usr/bin/env python3
"""Fleet load: N simulated gates against one MQTT broker, each running the gate's real sync code.

  scripts/fleet.py --gates 200 --rate 5 --seconds 300 [--deltas-every 10] [--broker mqtt://host:port]
                   [--workers N] [--communities 1] [--peer-events] [--json]

Every gate has its own SQLite store (a temp dir), its own StoreWriter thread and its own MqttSync
(client id = gate id) with a WhitelistApplier trusting an Ed25519 admin key made for the run. Its
"camera" is an event generator (R events/s, jittered): each event is submitted to the gate's writer as
`store.record_event` (event row + outbox row in one transaction; its commit wakes the sync's drainer),
exactly what the lane does. Gates are spread over worker processes (one generator thread each);
the parent process runs the broker (unless --broker), the collector (a QoS 1 subscriber to the
events, alarms, acks and $SYS topics) and the admin, which publishes a signed delta to every
community every D seconds. After S seconds the generators stop, the workers wait (bounded) for their
outboxes to drain, and the report says what was generated, delivered, lost and duplicated, the
end-to-end latency (event time to collector receive), the acks per gate and what it cost.
Exit status 1 if an event was lost or an ack is missing, 2 if the run itself failed.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import logging
import multiprocessing as mp
import os
import platform
import random
import resource
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.admin.build import build_push
from edge.admin.client import AdminClient
from edge.config.mqtt import MqttConfig
from edge.config.vision import VisionSection
from edge.lane import Whitelist
from edge.models import load_manifest
from edge.protocol.messages import PersonEntry
from edge.protocol.signing import AdminKey, public_key_text
from edge.records import parse_ts
from edge.store import EventRecord, Passage, Store
from edge.store.writer import StoreWriter
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

log = logging.getLogger("fleet")
JsonDict = dict[str, Any]
READY_TIMEOUT_S = 180.0
SETTLE_S = 30.0  # after the drain: how long the collector may lag behind the broker's PUBACKs
EMBEDDING_DIM = 128  # SFace


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


# ------------------------------------------------------------------------------------ gate side (worker)


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


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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
    cpu0 = _cpu_s()
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
                           "lag_ms": _percentiles([x * 1000 for x in lags]), "cpu_s": _cpu_s() - cpu0,
                           "threads": threads, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    conn.recv()  # "stop": the parent has its acks and events
    with ThreadPoolExecutor(max_workers=max(1, len(gates))) as pool:
        list(pool.map(lambda g: g.sync.stop(), gates))
    for g in gates:
        g.writer.close(10)
    conn.send(("done", {}))


# ------------------------------------------------------------------------------ parent: collector, admin


class Collector:
    """A QoS 1 subscriber with a persistent session (nothing is missed across a reconnect): every event id
    with its receive time, alarms, whitelist acks and the broker's $SYS figures."""

    def __init__(self, url: str, prefix: str, communities: list[str]) -> None:
        self.lock = threading.Lock()
        self.first_seen: dict[str, float] = {}
        self.latencies: list[float] = []
        self.duplicates = 0
        self.bad = 0
        self.alarms: dict[str, int] = {}
        self.acks: list[tuple[str, int | None, str, str, float]] = []  # gate, version, status, code, time
        self.sys: dict[str, str] = {}
        self.connects = 0
        self.topics = [f"{prefix}/{c}/+/{leaf}" for c in communities for leaf in ("events", "alarms", "whitelist/ack")]
        self.topics.append("$SYS/broker/#")
        self._subscribed = threading.Event()
        cfg = MqttConfig(url=url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-collector-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(cfg.host, cfg.port, keepalive=30,
                            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(15):
            raise ConnectionError(f"collector: no SUBACK from {url}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self.connects += 1
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        topic = msg.topic
        if topic.startswith("$SYS/"):
            self.sys[topic] = bytes(msg.payload).decode(errors="replace")
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            self.bad += 1
            return
        with self.lock:
            if topic.endswith("/events"):
                event_id = str(doc.get("event_id"))
                if event_id in self.first_seen:
                    self.duplicates += 1
                    return
                self.first_seen[event_id] = now
                self.latencies.append(now - parse_ts(str(doc["ts"])).timestamp())
            elif topic.endswith("/alarms"):
                kind = str(doc.get("kind"))
                self.alarms[kind] = self.alarms.get(kind, 0) + 1
            else:
                self.acks.append((str(doc.get("gate")), doc.get("version"), str(doc.get("status")),
                                  str(doc.get("code")), now))

    def has(self, ids: set[str]) -> bool:
        with self.lock:
            return ids.issubset(self.first_seen.keys())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def delta_entries(version: int, rng: np.random.Generator, model_id: str, per_delta: int = 4) -> list[JsonDict]:
    """The persons a delta upserts: new residents, each with one (random, normalised) template."""
    out = []
    for k in range(per_delta):
        v = rng.standard_normal(EMBEDDING_DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        entry = {"id": f"R{version:05d}-{k}", "name": f"Resident {version}-{k}", "unit": f"{version % 30}-{k}01",
                 "templates": {"model_id": model_id, "embeddings": [base64.b64encode(v.astype("<f4").tobytes())
                                                                    .decode("ascii")]}}
        PersonEntry.model_validate(entry)
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------ machine and report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_stat() -> dict[str, float]:
    """The whole machine's CPU seconds since boot by kind (/proc/stat's first line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:1 + len(STAT_FIELDS)]
    tick = os.sysconf("SC_CLK_TCK")
    return {k: float(v) / tick for k, v in zip(STAT_FIELDS, fields, strict=False)}


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot; busy counts steal (the host took it)."""
    st = machine_stat()
    total = sum(st.values())
    return total - st["idle"] - st["iowait"], total


def proc_cpu_s(pid: int) -> float | None:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (float(parts[11]) + float(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_status_mb(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def _percentiles(values: list[float]) -> JsonDict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    out: JsonDict = {"n": len(values)}
    for q in (50, 95, 99):
        out[f"p{q}"] = round(float(np.percentile(a, q)), 1)
    out["max"] = round(float(a.max()), 1)
    out["over_150"] = int((a > 150).sum())
    return out


@dataclass
class LoadSampler:
    """Load average and machine CPU busy share every few seconds while the run lasts."""

    every: float = 5.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # t, load1, busy share
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last = machine_cpu()
        t0 = time.monotonic()
        while not self._stop.wait(self.every):
            now = machine_cpu()
            busy = (now[0] - last[0]) / max(1e-9, now[1] - last[1])
            last = now
            self.samples.append((round(time.monotonic() - t0, 1), os.getloadavg()[0], round(busy, 3)))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Run:
    """What the parent gathers during a run, turned into the report by `summarise`."""

    generated: list[str] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)
    duplicates: int = 0
    pushes: dict[tuple[str, int], float] = field(default_factory=dict)  # (community, version) -> publish time
    acks: list[tuple[str, int | None, str, str, float]] = field(default_factory=list)
    gate_community: dict[str, str] = field(default_factory=dict)
    gates: dict[str, JsonDict] = field(default_factory=dict)  # per-gate figures from the workers


def summarise(run: Run) -> JsonDict:
    """Events (lost, duplicates, latency) and acks per gate; `problems` lists every reason to fail."""
    generated = set(run.generated)
    lost = sorted(generated - run.delivered)
    unexpected = sorted(run.delivered - generated)
    applied: dict[str, set[int]] = {g: set() for g in run.gate_community}
    ack_latency, rejected = [], []
    for gate, version, status, code, t in run.acks:
        push_t = run.pushes.get((run.gate_community.get(gate, ""), version or 0))
        if status == "applied" and push_t is not None and version is not None:
            if version not in applied[gate]:
                ack_latency.append((t - push_t) * 1000)
            applied[gate].add(version)
        elif status != "applied":
            rejected.append({"gate": gate, "version": version, "status": status, "code": code})
    missing = [{"gate": g, "version": v} for g, c in sorted(run.gate_community.items())
               for (pc, v) in sorted(run.pushes) if pc == c and v not in applied[g]]
    outbox_left = sum(int(g.get("outbox_left", 0)) for g in run.gates.values())
    problems = []
    if lost:
        problems.append(f"{len(lost)} events lost")
    if unexpected:
        problems.append(f"{len(unexpected)} events delivered that no gate generated")
    if missing:
        problems.append(f"{len(missing)} whitelist acks missing")
    if rejected:
        problems.append(f"{len(rejected)} whitelist pushes rejected")
    if outbox_left:
        problems.append(f"{outbox_left} outbox rows left after the drain")
    counts = [len(v) for v in applied.values()] or [0]
    return {
        "events": {"generated": len(run.generated), "delivered": len(run.delivered & generated), "lost": len(lost),
                   "lost_ids": lost[:20], "duplicates": run.duplicates, "unexpected": len(unexpected),
                   "outbox_left": outbox_left,
                   "latency_ms": _percentiles([x * 1000 for x in run.latencies_s])},
        "whitelist": {"deltas_pushed": len(run.pushes), "acks_expected": sum(
                          1 for g, c in run.gate_community.items() for (pc, _v) in run.pushes if pc == c),
                      "acks_applied": sum(len(v) for v in applied.values()),
                      "acks_per_gate": {"min": min(counts), "max": max(counts)}, "missing": missing[:20],
                      "rejected": rejected[:20], "ack_latency_ms": _percentiles(ack_latency),
                      "per_gate": {g: len(v) for g, v in sorted(applied.items())}},
        "problems": problems, "ok": not problems,
    }


# ------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Options:
    gates: int
    rate: float
    seconds: float
    deltas_every: float
    broker: str | None
    workers: int
    communities: int
    peer_events: bool
    drain_timeout: float
    prefix: str


def _recv(conn: Connection, proc: Any, timeout: float, want: str) -> Any:
    deadline = time.monotonic() + timeout
    while not conn.poll(0.2):
        if not proc.is_alive():
            raise RuntimeError(f"worker {proc.name} exited ({proc.exitcode}) while the parent waited for {want}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker {proc.name}: no {want} within {timeout:.0f} s")
    msg = conn.recv()
    if msg[0] != want:
        raise RuntimeError(f"worker {proc.name} sent {msg[0]} instead of {want}")
    return msg[1]


def run_fleet(opt: Options, workdir: Path) -> JsonDict:
    tag = secrets.token_hex(3)
    communities = [f"fleet-{tag}-c{j}" for j in range(opt.communities)]
    specs = [GateSpec(f"fleet-{tag}-g{i:04d}", communities[i % opt.communities]) for i in range(opt.gates)]
    key = AdminKey.generate()
    model_id = gate_model_id()
    broker = None if opt.broker else Mosquitto(workdir / "broker")
    if broker is not None:
        broker.start()
    url = opt.broker or (broker.url if broker else "")
    procs: list[tuple[Any, Connection]] = []
    sampler = LoadSampler()
    run = Run(gate_community={s.gate_id: s.community for s in specs})
    report: JsonDict = {"machine": {"cores": os.cpu_count(), "cpu_model": cpu_model(),
                                    "python": platform.python_version(),
                                    "load_before": [round(x, 2) for x in os.getloadavg()]},
                        "config": {**asdict(opt), "broker": url, "own_broker": broker is not None}}
    collector = admin = None
    try:
        collector = Collector(url, opt.prefix, communities)
        admin = AdminClient(url, opt.prefix)
        ctx = mp.get_context("spawn")
        n_workers = max(1, min(opt.workers, opt.gates))
        for w in range(n_workers):
            parent, child = ctx.Pipe()
            spec = WorkerSpec(w, tuple(specs[w::n_workers]), url, opt.prefix, public_key_text(key.public),
                              str(workdir / "gates"), opt.rate, opt.peer_events, opt.drain_timeout, seed=w + 1)
            proc = ctx.Process(target=worker_main, args=(child, spec), name=f"fleet-w{w}", daemon=True)
            proc.start()
            procs.append((proc, parent))
        t_setup = time.monotonic()
        ready = [_recv(c, p, READY_TIMEOUT_S + 60, "ready") for p, c in procs]
        report["setup_s"] = round(time.monotonic() - t_setup, 1)
        if sum(r["connected"] for r in ready) != opt.gates:
            raise RuntimeError(f"only {sum(r['connected'] for r in ready)} of {opt.gates} gates connected")
        threading.Thread(target=sampler.run, name="load-sampler", daemon=True).start()
        cpu0, parent_cpu0, stat0 = machine_cpu(), _cpu_s(), machine_stat()
        broker_cpu0 = proc_cpu_s(broker.proc.pid) if broker and broker.proc else None
        start_wall = time.time() + 1.0
        for _p, c in procs:
            c.send(("go", start_wall, opt.seconds))
        rng = np.random.default_rng(7)
        version = 0
        while opt.deltas_every > 0 and (next_at := start_wall + (version + 1) * opt.deltas_every) \
                < start_wall + opt.seconds:
            time.sleep(max(0.0, next_at - time.time()))
            version += 1
            entries = delta_entries(version, rng, model_id)
            deletes = [f"R{version - 2:05d}-0"] if version > 2 else []
            for community in communities:
                payload = build_push(key, community, "delta", entries, deletes, version=version)[0]
                admin.publish(f"{opt.prefix}/{community}/whitelist/delta", payload)
                run.pushes[(community, version)] = time.time()
        drained = [_recv(c, p, opt.seconds + opt.drain_timeout + 120, "drained") for p, c in procs]
        t_drained = time.time()
        for d in drained:
            run.generated += d["ids"]
            run.gates.update(d["gates"])
        wanted = set(run.generated)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not (collector.has(wanted) and _all_acked(collector, run)):
            time.sleep(0.1)
        cpu1, parent_cpu1, stat1 = machine_cpu(), _cpu_s(), machine_stat()
        broker_cpu1 = proc_cpu_s(broker.proc.pid) if broker and broker.proc else None
        sampler.stop()
        with collector.lock:
            run.delivered = set(collector.first_seen)
            run.latencies_s = list(collector.latencies)
            run.duplicates = collector.duplicates
            run.acks = list(collector.acks)
        report.update(summarise(run))
        wall = cpu1[1] - cpu0[1]
        ours = sum(d["cpu_s"] for d in drained) + (parent_cpu1 - parent_cpu0) + \
            ((broker_cpu1 or 0.0) - (broker_cpu0 or 0.0))
        sync = [g["sync"] for g in run.gates.values()]
        report["gates"] = {
            "reconnects": sum(max(0, int(s["connects"]) - 1) for s in sync),
            "publish_failed": sum(int(s["failed"]) for s in sync),
            "store_errors": sum(int(g["store_errors"]) for g in run.gates.values()),
            "peer_passages": sum(int(g["peer_passages"]) for g in run.gates.values()),
            "last_errors": sorted({str(s["last_error"]) for s in sync if s["last_error"]})[:10],
            "alarms": dict(collector.alarms)}
        report["run"] = {"target_events": round(opt.gates * opt.rate * opt.seconds),
                         "drain_s": round(max(d["drain_s"] for d in drained), 2),
                         "settle_s": round(time.time() - t_drained, 2)}
        loads = [s[1] for s in sampler.samples]
        report["resources"] = {
            "workers": [{"gates": len(specs[i::n_workers]), "threads": d["threads"],
                         "cpu_s": round(d["cpu_s"], 1), "rss_mb": round(d["rss_mb"]),
                         "generator_lag_ms": d["lag_ms"]} for i, d in enumerate(drained)],
            "parent_cpu_s": round(parent_cpu1 - parent_cpu0, 1),
            "broker": _broker_notes(broker, broker_cpu0, broker_cpu1, collector.sys),
            "machine_busy_pct": round(100 * (cpu1[0] - cpu0[0]) / max(1e-9, wall), 1),
            "machine_cpu_s": {k: round(stat1[k] - stat0[k], 1) for k in STAT_FIELDS},
            "ours_cpu_s": round(ours, 1), "others_cpu_s": round(max(0.0, (cpu1[0] - cpu0[0]) - ours), 1),
            "window_s": round(wall / (os.cpu_count() or 1), 1),
            "load1": {"max": max(loads, default=None), "mean": round(sum(loads) / len(loads), 2) if loads else None},
            "samples": sampler.samples}
        report["collector_connects"] = collector.connects
    finally:
        sampler.stop()
        for proc, conn in procs:
            try:
                conn.send(("stop",))
                _recv(conn, proc, 60, "done")
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("stopping %s: %s", proc.name, exc)
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        for client in (admin, collector):
            if client is not None:
                client.close()
        if broker is not None:
            broker.stop()
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def _all_acked(collector: Collector, run: Run) -> bool:
    with collector.lock:
        done = {(g, v) for g, v, status, _c, _t in collector.acks if status == "applied"}
    return all((g, v) in done for g, c in run.gate_community.items() for (pc, v) in run.pushes if pc == c)


def _broker_notes(broker: Mosquitto | None, cpu0: float | None, cpu1: float | None,
                  sys_topics: dict[str, str]) -> JsonDict:
    keys = ("clients/connected", "messages/received", "messages/sent", "load/messages/received/1min",
            "load/messages/sent/1min", "heap/current", "version")
    notes: JsonDict = {k: sys_topics.get(f"$SYS/broker/{k}") for k in keys if f"$SYS/broker/{k}" in sys_topics}
    if broker is not None and broker.proc is not None:
        notes["cpu_s"] = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 1)
        notes["rss_mb"] = proc_status_mb(broker.proc.pid, "VmRSS")
        notes["peak_rss_mb"] = proc_status_mb(broker.proc.pid, "VmHWM")
        try:
            notes["log_tail"] = broker.log_path.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            notes["log_tail"] = []
    return notes


def render(report: JsonDict) -> str:
    ev, wl, res = report["events"], report["whitelist"], report["resources"]
    lat, m, cfg = ev["latency_ms"], report["machine"], report["config"]
    lines = [
        f"fleet: {cfg['gates']} gates x {cfg['rate']} events/s x {cfg['seconds']} s, {cfg['workers']} worker "
        f"processes, {cfg['communities']} communities, deltas every {cfg['deltas_every']} s, broker {cfg['broker']}",
        f"machine: {m['cores']} cores, {m['cpu_model']}, Python {m['python']}; load {m['load_before']} before, "
        f"{m['load_after']} after",
        f"events: {ev['generated']} generated (target {report['run']['target_events']}), {ev['delivered']} delivered, "
        f"{ev['lost']} lost, {ev['duplicates']} duplicates, {ev['unexpected']} unexpected, "
        f"{ev['outbox_left']} left in outboxes (drained {report['run']['drain_s']} s after the stop)",
        f"latency event->collector: p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms, "
        f"max {lat.get('max')} ms",
        f"whitelist: {wl['deltas_pushed']} deltas pushed, {wl['acks_applied']}/{wl['acks_expected']} acks applied "
        f"(per gate {wl['acks_per_gate']['min']}-{wl['acks_per_gate']['max']}), {len(wl['missing'])} missing, "
        f"{len(wl['rejected'])} rejected; ack latency {wl['ack_latency_ms']}",
        f"gates: {report['gates']['reconnects']} reconnects, {report['gates']['publish_failed']} publishes refused, "
        f"{report['gates']['store_errors']} store errors, alarms {report['gates']['alarms']}, "
        f"errors {report['gates']['last_errors']}",
        f"cpu: machine {res['machine_busy_pct']}% busy over {res['window_s']} s; ours {res['ours_cpu_s']} cpu-s "
        f"(parent {res['parent_cpu_s']}, broker {res['broker'].get('cpu_s')}), others {res['others_cpu_s']} cpu-s; "
        f"load1 max {res['load1']['max']} mean {res['load1']['mean']}",
    ]
    lines += [f"  worker {i}: {w['gates']} gates, {w['threads']} threads, {w['cpu_s']} cpu-s, {w['rss_mb']} MB, "
              f"generator lag {w['generator_lag_ms']}" for i, w in enumerate(res["workers"])]
    lines.append(f"broker: { {k: v for k, v in res['broker'].items() if k != 'log_tail'} }")
    lines.append("RESULT: " + ("ok" if report["ok"] else "FAILED: " + "; ".join(report["problems"])))
    return "\n".join(lines)


# Bounds: a load run always ends by itself, and never floods more than a lab broker can take.
MAX_GATES, MAX_RATE, MAX_SECONDS, MAX_WORKERS = 2000, 100.0, 3600.0, 64
# A real gate has its machine to itself; simulated gates share one Python process per worker, and when a
# delta reaches all of them at once their appliers fight over that process's GIL (at 50 gates per process
# an apply cost ~8x its own CPU). Few gates per process keeps that convoy short.
GATES_PER_WORKER = 5


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url if "://" in url else "mqtt://" + url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--gates", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="events/s per gate")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--deltas-every", type=float, default=10.0, help="seconds between signed deltas (0: none)")
    ap.add_argument("--broker", help="mqtt://host:port (default: start a mosquitto on a free loopback port)")
    ap.add_argument("--workers", type=int, default=0,
                    help=f"worker processes the gates are spread over (default: one per {GATES_PER_WORKER} gates, "
                         f"at most {MAX_WORKERS})")
    ap.add_argument("--communities", type=int, default=1, help="communities the gates are spread over")
    ap.add_argument("--peer-events", action="store_true",
                    help="gates subscribe to their community's events like the real gate (N-1 fan-out per event)")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--prefix", default="edge-gate")
    ap.add_argument("--keep", type=Path, help="keep the gates' stores and the broker log in this directory")
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ap.add_argument("--allow-remote", action="store_true", help="allow a --broker that is not on this machine")
    args = ap.parse_args(argv)
    if not (1 <= args.gates <= MAX_GATES and 0 < args.rate <= MAX_RATE and 0 < args.seconds <= MAX_SECONDS
            and 1 <= args.communities <= args.gates and 0 < args.drain_timeout <= MAX_SECONDS):
        ap.error(f"need 1 <= gates <= {MAX_GATES}, 0 < rate <= {MAX_RATE}, 0 < seconds <= {MAX_SECONDS}, "
                 f"0 < drain-timeout <= {MAX_SECONDS} and 1 <= communities <= gates")
    if args.broker and not args.allow_remote and not _is_loopback(args.broker):
        ap.error("--broker must be on this machine (127.0.0.0/8, ::1, localhost); a load test of another host "
                 "needs --allow-remote and that host's owner's consent")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not 0 <= args.workers <= MAX_WORKERS:
        ap.error(f"need 0 <= workers <= {MAX_WORKERS} (0: one per {GATES_PER_WORKER} gates)")
    workers = args.workers or min(MAX_WORKERS, -(-args.gates // GATES_PER_WORKER))
    opt = Options(args.gates, args.rate, args.seconds, args.deltas_every, args.broker, workers,
                  args.communities, args.peer_events, args.drain_timeout, args.prefix)
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            report = run_fleet(opt, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="edge-gate-fleet-") as tmp:
                report = run_fleet(opt, Path(tmp))
    except (RuntimeError, TimeoutError, ConnectionError, OSError) as exc:
        print(f"fleet run failed: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
