"""The fleet run itself and its command line: start the broker (unless --broker), the collector, the
admin and the worker processes; start them all at one instant, push deltas, wait for the drain and the
collector, gather the figures, stop everything; bounds that keep a load run finite and on this machine."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edge.admin.client import AdminClient
from edge.protocol.signing import AdminKey, public_key_text
from edge.tools.broker import Mosquitto
from edge.tools.fleet.admin import DeltaPusher
from edge.tools.fleet.collector import Collector
from edge.tools.fleet.gate_worker import READY_TIMEOUT_S, GateSpec, WorkerSpec, gate_model_id, worker_main
from edge.tools.fleet.report import broker_notes, render
from edge.tools.fleet.verify import Run, all_acked, summarise
from edge.tools.procstat import STAT_FIELDS, LoadSampler, cpu_model, machine_cpu, machine_stat, own_cpu_s, proc_cpu_s

log = logging.getLogger("fleet")
JsonDict = dict[str, Any]
SETTLE_S = 30.0  # after the drain: how long the collector may lag behind the broker's PUBACKs


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
        pusher = DeltaPusher(admin, key, opt.prefix, communities, model_id)
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
        cpu0, parent_cpu0, stat0 = machine_cpu(), own_cpu_s(), machine_stat()
        broker_cpu0 = proc_cpu_s(broker.proc.pid) if broker and broker.proc else None
        start_wall = time.time() + 1.0
        for _p, c in procs:
            c.send(("go", start_wall, opt.seconds))
        run.pushes = pusher.run(start_wall, opt.seconds, opt.deltas_every)
        drained = [_recv(c, p, opt.seconds + opt.drain_timeout + 120, "drained") for p, c in procs]
        t_drained = time.time()
        for d in drained:
            run.generated += d["ids"]
            run.gates.update(d["gates"])
        wanted = set(run.generated)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and not (collector.has(wanted) and all_acked(collector.applied(), run)):
            time.sleep(0.1)
        cpu1, parent_cpu1, stat1 = machine_cpu(), own_cpu_s(), machine_stat()
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
            "broker": broker_notes(broker, broker_cpu0, broker_cpu1, collector.sys),
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
    from edge.tools import fleet

    ap = argparse.ArgumentParser(description=fleet.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
