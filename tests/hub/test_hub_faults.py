"""The hub when things go wrong: PostgreSQL stopped while gates keep sending (nothing acknowledged that
was not stored, everything stored once when it is back), and two hub processes on one broker and one
database through an MQTT v5 shared subscription (each event stored once, by one of them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from support.wait import wait_until

from edge.hub.db import HubDatabase
from edge.hub.register import Register
from edge.protocol.payloads import EVENT_SCHEMA
from edge.protocol.signing import AdminKey, SigningKey
from edge.tools.broker import Mosquitto
from edge.tools.postgres import Postgres
from tests.hub.test_hub_service import Running, hub_for

REPO = Path(__file__).resolve().parents[2]


def _event(n: int) -> dict[str, object]:
    return {"schema": EVENT_SCHEMA, "event_id": f"01JE{n:022d}", "ts": "2026-12-01T08:00:00.000000Z",
            "gate_id": "north-1", "direction": "in", "person_id": f"R{n % 7}", "decision": "grant",
            "reasons": [], "alarms": [], "temperature": None, "scores": None}


class Gate:
    """A cheap publisher of correctly signed events for gate north-1 (QoS 1)."""

    def __init__(self, broker: Mosquitto, key: SigningKey) -> None:
        self.key = key
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{id(self)}", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, numbers: range) -> None:
        for n in numbers:
            info = self.client.publish("edge-gate/maple/north-1/events", json.dumps(self.key.sign(_event(n))), qos=1)
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stored(db: HubDatabase) -> int:
    row = db.one("SELECT COUNT(*) FROM events")
    return int(row[0]) if row else 0


def test_a_stopped_postgresql_loses_nothing(broker: Mosquitto, postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.create_database("outage")
    db = HubDatabase.open(url)
    north = SigningKey.generate()
    Register(db).set_gate("north-1", north.public_text, "admin")
    hub = hub_for(broker, db, AdminKey.generate(), tmp_path)
    gate = Gate(broker, north)
    probe = HubDatabase.open(url)
    try:
        with Running(hub):
            gate.send(range(0, 30))
            wait_until(lambda: _stored(probe) == 30, 30, "the first 30 stored")
            probe.close()
            postgres.stop()
            down = time.monotonic()
            try:  # 20 s without a database, the gates sending all along (a scenario length, not a speed)
                for n in range(30, 60, 3):
                    gate.send(range(n, n + 3))  # the broker takes them; the hub cannot store them: no PUBACK
                    time.sleep(2.0)
                wait_until(lambda: hub._db_down, 30, "the hub to notice the database is gone")
                assert time.monotonic() - down >= 20
            finally:
                postgres.start()
            probe = HubDatabase.open(url)
            wait_until(lambda: _stored(probe) == 60, 60, "what came during the outage, stored after it")
            gate.send(range(60, 90))
            wait_until(lambda: _stored(probe) == 90, 30, "and what comes after")
        ids = [r[0] for r in probe.rows("SELECT event_id FROM events")]
        assert sorted(ids) == sorted(str(_event(n)["event_id"]) for n in range(90))
    finally:
        gate.close()
        probe.close()
        db.close()


def test_two_hub_processes_share_the_events_and_store_each_once(broker: Mosquitto, postgres: Postgres,
                                                               tmp_path: Path) -> None:
    url = postgres.create_database("shared")
    north = SigningKey.generate()
    with HubDatabase.open(url) as db:
        Register(db).set_gate("north-1", north.public_text, "admin")
    AdminKey.generate().save(tmp_path / "admin.pem")
    procs = []
    for instance in ("1", "2"):
        cfg = tmp_path / f"hub{instance}.toml"
        cfg.write_text(f'[hub]\ncommunity = "maple"\ndata_dir = "{tmp_path}"\ndatabase = "{url}"\n'
                       f'admin_key_file = "{tmp_path / "admin.pem"}"\ninstance = "{instance}"\n'
                       f'shared_group = "hubs"\npublisher = {"true" if instance == "1" else "false"}\n'
                       f'[mqtt]\nurl = "{broker.url}"\n')
        procs.append(subprocess.Popen([sys.executable, "-m", "edge", "hub", "run", "--config", str(cfg)],
                                      cwd=REPO, stderr=subprocess.PIPE, text=True,
                                      env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}))
    errors: list[str] = []
    readers = [threading.Thread(target=lambda p=p: errors.extend(p.stderr or []), daemon=True) for p in procs]
    for r in readers:
        r.start()
    probe = HubDatabase.open(url)
    gate = Gate(broker, north)
    try:
        wait_until(lambda: sum("hub connected" in e for e in errors) == 2, 60, "both hubs connected")
        gate.send(range(400))
        wait_until(lambda: _stored(probe) == 400, 60, "every event stored")
        by = dict(probe.rows("SELECT stored_by, COUNT(*) FROM events GROUP BY stored_by"))
        assert set(by) == {"1", "2"} and sum(by.values()) == 400, by  # split between them, each once
        print(f"shared subscription: {by}")
    finally:
        gate.close()
        probe.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    assert all(p.returncode == 0 for p in procs), errors[-5:]


def test_a_hub_killed_mid_snapshot_restarts_and_the_gate_converges(broker: Mosquitto, tmp_path: Path) -> None:
    import signal as sig

    from edge.config.mqtt import MqttConfig
    from edge.store import Store
    from edge.sync.mqtt import MqttSync
    from edge.sync.whitelist import WhitelistApplier
    from tests.hub.test_register import MODEL, person
    from tests.sync.sync_helpers import Subscriber

    admin, north = AdminKey.generate(), SigningKey.generate()
    admin.save(tmp_path / "admin.pem")
    url = str(tmp_path / "hub.db")
    with HubDatabase.open(url) as db:
        reg = Register(db)
        reg.set_gate("north-1", north.public_text, "admin")
        for start in range(0, 12_000, 3000):  # three snapshot chunks of at most 5,000
            reg.upsert([person(f"R{i:05d}", i) for i in range(start, start + 3000)], "admin")
        version = reg.version
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'[hub]\ncommunity = "maple"\ndata_dir = "{tmp_path}"\nadmin_key_file = "{tmp_path / "admin.pem"}"\n'
                   f'snapshot_min_interval_s = 0\n[mqtt]\nurl = "{broker.url}"\n')
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}

    def start_hub() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "edge", "hub", "run", "--config", str(cfg)], cwd=REPO,
                                env=env, text=True, stderr=subprocess.DEVNULL)

    snap, current = "edge-gate/maple/north-1/whitelist/snapshot", "edge-gate/maple/whitelist/current"
    chunks = Subscriber(broker.port, [snap, current], client_id="chunk-watch")
    store = Store.open(tmp_path / "gate.sqlite")
    gcfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, admin_public_keys=[admin.public_text],
                      snapshot_chunk_timeout_s=3, snapshot_reask_min_s=1, snapshot_reask_max_s=2)
    wl = WhitelistApplier(store, None, MODEL, gcfg.trusted_keys(), community="maple", gate_id="north-1",
                          snapshot_chunk_timeout_s=3)
    sync = MqttSync(gcfg, store, gate_id="north-1", community="maple", whitelist=wl, key=north)
    hub = start_hub()
    try:
        wait_until(lambda: any(json.loads(p)["version"] == version for p in chunks.on(current)), 120,
                   "every change published before the gate comes")
        sync.start()  # at version 0, the retained delta does not build on it: it asks; the hub sends chunks
        wait_until(lambda: len(chunks.on(snap)) >= 1, 120, "the first chunk")
        hub.send_signal(sig.SIGKILL)  # mid-snapshot
        hub.wait(10)
        got = len(chunks.on(snap))
        hub = start_hub()
        wait_until(lambda: wl.version == version, 180, "the gate converged on the restarted hub's snapshot")
        assert store.count_persons() == 12_000
        print(f"killed after {got} chunk(s) of 3; converged at version {version}")
    finally:
        sync.stop()
        store.close()
        chunks.close()
        hub.terminate()
        hub.wait(30)
