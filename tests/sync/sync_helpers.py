"""Test helpers for the sync suite: a real MQTT subscriber standing in for the server/admin side,
signed push builders, polling, and a dump of the whitelist part of the store."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.sync.messages import DELTA_SCHEMA, SNAPSHOT_SCHEMA
from edge.sync.signing import AdminKey

MODEL = "sface_2021dec"
COMMUNITY = "sunny-gardens"
GATE = "gate-a"


def wait_until(pred: Callable[[], bool], timeout: float, what: str = "condition", every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Subscriber:
    """A real paho client collecting every message on its topics (with its own reconnects)."""

    def __init__(self, port: int, topics: list[str], *, client_id: str = "test-sub", persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        props = None
        if persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=10, clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscriber never got its SUBACK"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.on(topic)]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def embedding(seed: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def b64(v: np.ndarray) -> str:
    return base64.b64encode(v.astype("<f4").tobytes()).decode()


def entry(pid: str, seed: int, model: str = MODEL, n: int = 1, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"id": pid, "name": f"Person {pid}", "unit": "1-101",
                         "templates": {"model_id": model, "embeddings": [b64(embedding(seed * 31 + i))
                                                                         for i in range(n)]}}
    e.update(over)
    return e


def _times(now: datetime) -> dict[str, str]:
    return {"issued_at": now.isoformat(), "expires_at": (now + timedelta(days=1)).isoformat()}


def delta(admin: AdminKey, version: int, upserts: list[dict[str, Any]], deletes: list[str] | None = None,
          base: int | None = None, now: datetime | None = None, **over: Any) -> bytes:
    body: dict[str, Any] = {"schema": DELTA_SCHEMA, "community": COMMUNITY, "gate": None, "version": version,
                            "base_version": version - 1 if base is None else base, **_times(now or datetime.now(UTC)),
                            "upserts": upserts, "deletes": deletes or []}
    body.update(over)
    return json.dumps(admin.sign(body), ensure_ascii=False).encode()


def snapshot(admin: AdminKey, version: int, entries: list[dict[str, Any]], per_chunk: int = 5000,
             now: datetime | None = None) -> list[bytes]:
    chunks = [entries[i:i + per_chunk] for i in range(0, len(entries), per_chunk)] or [[]]
    out = []
    for i, part in enumerate(chunks):
        body = {"schema": SNAPSHOT_SCHEMA, "community": COMMUNITY, "gate": None, "version": version,
                **_times(now or datetime.now(UTC)), "chunk": i, "chunks": len(chunks),
                "total_persons": len(entries), "entries": part}
        out.append(json.dumps(admin.sign(body), ensure_ascii=False).encode())
    return out


def dump_whitelist(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Persons, templates, meta and audit rows as they are on disk (what a rejected push must not touch)."""
    conn = sqlite3.connect(db)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("persons", "templates", "meta", "audit")}
    finally:
        conn.close()
