"""Hub load: `scripts/hub_load.py --gates 200 --rate 5 --seconds 300`. N simulated gates publish correctly
signed events (Ed25519 over RFC 8785, each gate its own key, many gate ids per publisher process) at
`rate` events/s each to one Mosquitto; one or more real `gate hub run` processes verify and archive
them. At the end: every event published (PUBACKed by the broker) must be in the hub's database exactly
once. Prints the figures as a markdown block (for docs/performance.md)."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edge.tools.procstat import cpu_model, machine_cpu, proc_cpu_s

REPO = Path(__file__).resolve().parents[2]
COMMUNITY = "load"


def _publisher(conn: Connection, port: int, gates: list[tuple[str, bytes]], rate: float, seconds: float,
               start_at: float) -> None:
    """One process: its gates' events, paced, QoS 1; reports how many the broker acknowledged."""
    import paho.mqtt.client as mqtt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.protocol.signing import SigningKey

    keys = [(g, SigningKey(Ed25519PrivateKey.from_private_bytes(seed))) for g, seed in gates]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"load-{os.getpid()}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    lock = threading.Lock()

    def on_publish(*_a: Any) -> None:
        with lock:
            acked[0] += 1
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    per_s = rate * len(keys)
    sent = 0
    while time.time() < start_at:
        time.sleep(0.01)
    t0 = time.monotonic()
    total = int(per_s * seconds)
    while sent < total:
        due = int((time.monotonic() - t0) * per_s) + 1
        while sent < min(due, total):
            gate, key = keys[sent % len(keys)]
            now = time.time()
            ev = {"schema": "edge-gate/event/2", "event_id": f"{gate}-{sent:09d}",
                  "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z",
                  "gate_id": gate, "direction": "in", "person_id": f"R{sent % 997}", "decision": "grant",
                  "reasons": [{"code": "ok", "effect": "allow", "params": {}}], "alarms": [], "temperature": None,
                  "scores": {"score": 0.71, "margin": 0.3}}
            client.publish(f"edge-gate/{COMMUNITY}/{gate}/events", json.dumps(key.sign(ev)), qos=1)
            sent += 1
        time.sleep(0.002)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if acked[0] >= sent:
                break
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    conn.send({"sent": sent, "acked": acked[0], "behind_s": time.monotonic() - t0 - seconds})
    conn.close()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="hub_load.py", description=__doc__.splitlines()[0])
    p.add_argument("--gates", type=int, default=200)
    p.add_argument("--rate", type=float, default=5.0, help="events per second per gate")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--processes", type=int, default=4, help="publisher processes")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--hubs", type=int, default=1, help="hub processes (more than one: a shared subscription)")
    args = p.parse_args(argv)
    if not (1 <= args.gates <= 2000 and 0 < args.rate <= 100 and 0 < args.seconds <= 3600 and 1 <= args.hubs <= 4):
        print("hub_load.py: keep --gates 1..2000, --rate 0..100, --seconds ..3600, --hubs 1..4", file=sys.stderr)
        return 2

    from cryptography.hazmat.primitives import serialization

    from edge.hub.db import HubDatabase
    from edge.hub.register import Register
    from edge.protocol.signing import SigningKey
    from edge.tools.broker import Mosquitto
    from edge.tools.postgres import Postgres

    with tempfile.TemporaryDirectory(prefix="hub-load-") as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "broker")
        broker.start()
        pg = Postgres(root / "pg") if args.database == "postgresql" else None
        procs: list[subprocess.Popen[str]] = []
        try:
            if pg is not None:
                pg.start()
                url = pg.create_database("hub")
            else:
                url = str(root / "hub.db")
            seeds = [(f"g{i:04d}", os.urandom(32)) for i in range(args.gates)]
            with HubDatabase.open(url) as db:
                reg = Register(db)
                for gate, seed in seeds:
                    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
                    reg.set_gate(gate, SigningKey(Ed25519PrivateKey.from_private_bytes(seed)).public_text, "load")
            admin = SigningKey.generate()
            (root / "admin.pem").write_bytes(admin.private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            (root / "admin.pem").chmod(0o600)
            for n in range(args.hubs):
                cfg = root / f"hub{n}.toml"
                shared = 'shared_group = "hubs"\n' if args.hubs > 1 else ""
                cfg.write_text(f'[hub]\ncommunity = "{COMMUNITY}"\ndata_dir = "{root}"\ndatabase = "{url}"\n'
                               f'admin_key_file = "{root / "admin.pem"}"\ninstance = "{n + 1}"\n{shared}'
                               f'publisher = {"true" if n == 0 else "false"}\n[mqtt]\nurl = "{broker.url}"\n')
                procs.append(subprocess.Popen([sys.executable, "-m", "edge", "hub", "run", "--config", str(cfg)],
                                              cwd=REPO, stderr=subprocess.DEVNULL, text=True))
            time.sleep(3.0)  # the hubs connect and subscribe (their sessions then hold what comes)
            slices = [seeds[i::args.processes] for i in range(args.processes)]
            start_at = time.time() + 2.0
            pipes, workers = [], []
            ctx = mp.get_context("spawn")
            for part in slices:
                parent, child = ctx.Pipe(duplex=False)
                w = ctx.Process(target=_publisher, args=(child, broker.port, part, args.rate, args.seconds, start_at))
                w.start()
                pipes.append(parent)
                workers.append(w)
            busy0, total0 = machine_cpu()
            hub_cpu0 = sum(proc_cpu_s(pr.pid) or 0.0 for pr in procs)
            t0 = time.monotonic()
            results = [pp.recv() for pp in pipes]
            for w in workers:
                w.join(30)
            sent = sum(r["sent"] for r in results)
            acked = sum(r["acked"] for r in results)
            publish_done = time.monotonic()
            with HubDatabase.open(url) as db:
                def stored() -> int:
                    row = db.one("SELECT COUNT(*) FROM events")
                    return int(row[0]) if row else 0
                deadline = time.monotonic() + 300
                while stored() < acked and time.monotonic() < deadline:
                    time.sleep(0.2)
                drain_s = time.monotonic() - publish_done
                count = stored()
                distinct = db.one("SELECT COUNT(DISTINCT event_id) FROM events")
                by = dict(db.rows("SELECT stored_by, COUNT(*) FROM events GROUP BY stored_by"))
            wall = time.monotonic() - t0
            busy1, total1 = machine_cpu()
            hub_cpu = sum(proc_cpu_s(pr.pid) or 0.0 for pr in procs) - hub_cpu0
        finally:
            for pr in procs:
                pr.terminate()
            for pr in procs:
                try:
                    pr.wait(30)
                except subprocess.TimeoutExpired:
                    pr.kill()
            if pg is not None:
                pg.stop()
            broker.stop()
    lost = acked - count
    dupes = count - (distinct[0] if distinct else 0)
    print(f"""## Hub ingest: {args.gates} gates x {args.rate:g} events/s for {args.seconds:g} s

`python scripts/hub_load.py --gates {args.gates} --rate {args.rate:g} --seconds {args.seconds:g} \
--database {args.database} --hubs {args.hubs}`
on {cpu_model()} ({os.cpu_count()} cores): {args.processes} publisher processes sign each event with its gate's
own key; {args.hubs} `gate hub run` process(es) verify every signature and store it ({args.database}).

| measure | result |
| --- | --- |
| events | {sent:,} published, {acked:,} PUBACKed, **{count:,} stored, {lost:,} lost, {dupes:,} duplicates** |
| drain after the last publish | {drain_s:.1f} s |
| stored by | {", ".join(f"hub {k}: {v:,}" for k, v in sorted(by.items()))} |
| hub CPU | {hub_cpu:.1f} CPU-s for {count:,} events ({1000 * hub_cpu / max(count, 1):.2f} ms per event) |
| machine busy | {100 * (busy1 - busy0) / max(total1 - total0, 1e-9):.1f} % over {wall:.0f} s |
""")
    return 0 if lost == 0 and acked == sent else 1
