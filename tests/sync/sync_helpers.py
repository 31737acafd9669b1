"""Test helpers for the sync suite: a real MQTT subscriber standing in for the server/admin side,
signed push builders, polling, and a dump of the whitelist part of the store."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from support.wait import wait_until

from edge.protocol.messages import DELTA_SCHEMA, SNAPSHOT_SCHEMA
from edge.protocol.signing import AdminKey, SigningKey

MODEL = "sface_2021dec"
COMMUNITY = "sunny-gardens"
GATE = "gate-a"
GATE_KEY = SigningKey.generate()  # the test gate's own key (a real gate keeps one in its data dir)


def gates_file(path: Path, keys: dict[str, SigningKey] | None = None) -> Path:
    """The admin's gates file listing `keys` (default: the test gate), for `gate admin ... --gates`."""
    keys = {GATE: GATE_KEY} if keys is None else keys
    path.write_text(json.dumps({"gates": [{"gate_id": g, "public_key": k.public_text} for g, k in keys.items()]}))
    return path


class Subscriber:
    """A real paho client collecting every message on its topics (with its own reconnects); with
    `username`, it logs in (password `password`). `granted` holds the broker's SUBACK reason codes, one
    per topic (codes of 128 and above: refused)."""

    def __init__(self, port: int, topics: list[str], *, client_id: str = "test-sub", persistent: bool = False,
                 username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.granted: list[int] = []
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
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

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[Any], props: Any) -> None:
        self.granted = [rc.value for rc in reason_codes]
        self.subscribed.set()

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
             now: datetime | None = None, gates: list[dict[str, str]] | None = None) -> list[bytes]:
    chunks = [entries[i:i + per_chunk] for i in range(0, len(entries), per_chunk)] or [[]]
    out = []
    for i, part in enumerate(chunks):
        body = {"schema": SNAPSHOT_SCHEMA, "community": COMMUNITY, "gate": None, "version": version,
                **_times(now or datetime.now(UTC)), "chunk": i, "chunks": len(chunks),
                "total_persons": len(entries), "entries": part, "gates": gates or []}
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


REPO = Path(__file__).resolve().parents[2]


def gate_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `gate` command (python -m edge) to completion."""
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


class CliWatch:
    """A running `gate admin events|acks ...` subprocess whose stdout and stderr lines are collected."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, into), daemon=True)
                         for s, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_watching(self, timeout: float = 60) -> None:
        """Until it has subscribed (it says so on stderr), so that no live message is missed."""
        wait_until(lambda: any(line.startswith("watching ") for line in self.err) or self.proc.poll() is not None,
                   timeout, "the admin command to subscribe")
        assert self.proc.poll() is None, "\n".join(self.err)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.out)]

    def finish(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class MqttTap:
    """A TCP proxy between a client and the broker that reads the MQTT packets going through: per
    connection, the client's QoS 1 PUBLISHes on `topic` (packet id, payload) and the broker's PUBACKs,
    so the number of publishes on the wire without a PUBACK can be watched. `drop()` cuts every
    connection (as a network failure would); the client then reconnects through the tap. `withhold_acks(conn)`
keeps the broker's PUBACKs on that connection from reaching the client (a broker that stopped answering,
without freezing the whole broker), so the client's in-flight window fills deterministically."""

    def __init__(self, upstream_port: int, topic: str) -> None:
        self.upstream_port = upstream_port
        self.topic = topic
        self.lock = threading.Lock()
        self.connections: list[list[tuple[int, bytes]]] = []  # per connection: (packet id, payload) published
        self.outstanding: set[tuple[int, int]] = set()  # (connection, packet id) published, not PUBACKed yet
        self.acked: list[set[int]] = []  # per connection: packet ids the broker PUBACKed
        self.max_outstanding = 0
        self.withheld: set[int] = set()  # connections whose PUBACKs are kept from the client
        self._socks: list[Any] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="tap-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                conn = len(self.connections)
                self.connections.append([])
                self.acked.append(set())
                self._socks += [client, upstream]
            state = {"v5": False}
            threading.Thread(target=self._pump, args=(client, upstream, conn, True, state), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, conn, False, state), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, conn: int, from_client: bool,
              state: dict[str, bool]) -> None:
        buf = b""
        try:
            while data := src.recv(65536):
                buf += data
                out = b""
                while (packet := _split_packet(buf)) is not None:
                    head, body, size = packet
                    if self._seen(head, body, conn, from_client, state):
                        out += buf[:size]
                    buf = buf[size:]
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _seen(self, head: int, body: bytes, conn: int, from_client: bool, state: dict[str, bool]) -> bool:
        """Record one whole packet; False if it must not be passed on (a withheld PUBACK)."""
        kind, flags = head >> 4, head & 0x0F
        if from_client and kind == 1:  # CONNECT: protocol name, then the level (5 or 4)
            name_len = int.from_bytes(body[:2], "big")
            state["v5"] = body[2 + name_len] == 5
        elif from_client and kind == 3 and (flags >> 1) & 3 == 1:  # PUBLISH, QoS 1
            topic_len = int.from_bytes(body[:2], "big")
            topic = body[2:2 + topic_len].decode()
            pid = int.from_bytes(body[2 + topic_len:4 + topic_len], "big")
            at = 4 + topic_len
            if state["v5"]:
                props, used = _varint(body, at)
                at += used + props
            if topic == self.topic:
                with self.lock:
                    self.connections[conn].append((pid, body[at:]))
                    self.outstanding.add((conn, pid))
                    self.max_outstanding = max(self.max_outstanding, sum(c == conn for c, _ in self.outstanding))
        elif not from_client and kind == 4:  # PUBACK
            pid = int.from_bytes(body[:2], "big")
            with self.lock:
                if conn in self.withheld:
                    return False
                if (conn, pid) in self.outstanding:
                    self.outstanding.discard((conn, pid))
                    self.acked[conn].add(pid)
        return True

    def withhold_acks(self, conn: int) -> None:
        with self.lock:
            self.withheld.add(conn)

    def in_flight(self, conn: int) -> int:
        with self.lock:
            return sum(c == conn for c, _ in self.outstanding)

    def published(self) -> int:
        with self.lock:
            return sum(len(c) for c in self.connections)

    def drop(self) -> None:
        with self.lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()
        self.drop()


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """(value, bytes used) of an MQTT variable byte integer at data[at:]; (-1, 0) if incomplete."""
    value, shift = 0, 0
    for i in range(4):
        if at + i >= len(data):
            return -1, 0
        byte = data[at + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("malformed MQTT remaining length")


def _split_packet(buf: bytes) -> tuple[int, bytes, int] | None:
    """(first header byte, body, total size) of the first whole packet in buf, or None."""
    if len(buf) < 2:
        return None
    length, used = _varint(buf, 1)
    if used == 0 or len(buf) < 1 + used + length:
        return None
    return buf[0], buf[1 + used:1 + used + length], 1 + used + length
