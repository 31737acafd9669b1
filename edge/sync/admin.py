"""The community admin's side: keys, signed whitelist pushes from a CSV/JSON person file, and
watching events and acks. It uses the same message and signature code as the gate.

Person files (one person per row/object): id, name, kind, status, unit, valid_from, valid_until,
max_uses, care_watch_hours, and either `photo` (path of a face photo, relative to the file) or
`embeddings` (lists of floats, with `model_id`). A delta file may also name `deletes` (JSON) or rows
whose `action` is `delete` (CSV).
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.sync.config import MqttConfig
from edge.sync.messages import DELTA_SCHEMA, MAX_ENTRIES_PER_MESSAGE, SNAPSHOT_SCHEMA, PersonEntry
from edge.sync.signing import AdminKey, public_key_text
from edge.sync.topics import CURRENT_SCHEMA

log = logging.getLogger(__name__)

_FIELDS = ("id", "name", "kind", "status", "unit", "valid_from", "valid_until", "max_uses", "care_watch_hours")


def keygen(out: Path) -> str:
    """Write a new admin private key (PEM, mode 0600); return the public key text for gate configs."""
    key = AdminKey.generate()
    key.save(out)
    return public_key_text(key.public)


def _jpeg_b64(path: Path) -> str:
    data = path.read_bytes()
    if data[:3] != b"\xff\xd8\xff":  # not a JPEG: re-encode (PNG and friends)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path} is not a readable image")
        data = bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1])
    return base64.b64encode(data).decode("ascii")


def _entry(row: dict[str, Any], base: Path, default_model: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {k: row[k] for k in _FIELDS if row.get(k) not in (None, "")}
    for k in ("max_uses",):
        if k in out:
            out[k] = int(out[k])
    if "care_watch_hours" in out:
        out["care_watch_hours"] = float(out["care_watch_hours"])
    if row.get("photo"):
        out["photo_jpeg"] = _jpeg_b64((base / str(row["photo"])).resolve())
    elif row.get("embeddings"):
        vecs = row["embeddings"]
        if isinstance(vecs, str):
            vecs = json.loads(vecs)
        model = row.get("model_id") or default_model
        if not model:
            raise ValueError(f"person {row.get('id')}: embeddings need a model_id")
        out["templates"] = {"model_id": model, "embeddings": [
            base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii") for v in vecs]}
    PersonEntry.model_validate(out)  # fail here, at the admin's desk, not at the gate
    return out


def read_person_file(path: Path, default_model: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(upserts, deletes) from a CSV or JSON file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        deletes = [r["id"] for r in rows if (r.get("action") or "").strip().lower() == "delete"]
        upserts = [_entry(r, path.parent, default_model) for r in rows
                   if (r.get("action") or "").strip().lower() != "delete"]
        return upserts, deletes
    data = json.loads(path.read_text(encoding="utf-8"))
    persons = data.get("persons", []) if isinstance(data, dict) else data
    deletes = list(data.get("deletes", [])) if isinstance(data, dict) else []
    return [_entry(p, path.parent, default_model) for p in persons], deletes


def build_push(key: AdminKey, community: str, kind: str, upserts: list[dict[str, Any]], deletes: list[str], *,
               version: int, base_version: int | None = None, gate: str | None = None,
               valid_for: timedelta = timedelta(days=1), now: datetime | None = None) -> list[bytes]:
    """Signed payloads: one delta, or the snapshot's chunks."""
    now = now or datetime.now(UTC)
    common: dict[str, Any] = {"community": community, "gate": gate, "version": version,
                              "issued_at": now.isoformat(), "expires_at": (now + valid_for).isoformat()}
    if kind == "delta":
        body = {"schema": DELTA_SCHEMA, **common, "base_version": version - 1 if base_version is None else base_version,
                "upserts": upserts, "deletes": deletes}
        return [json.dumps(key.sign(body), ensure_ascii=False).encode()]
    if deletes:
        raise ValueError("a snapshot replaces the whole list: it has no deletes")
    chunks = [upserts[i:i + MAX_ENTRIES_PER_MESSAGE] for i in range(0, len(upserts), MAX_ENTRIES_PER_MESSAGE)] or [[]]
    return [json.dumps(key.sign({"schema": SNAPSHOT_SCHEMA, **common, "chunk": i, "chunks": len(chunks),
                                 "total_persons": len(upserts), "entries": chunk}), ensure_ascii=False).encode()
            for i, chunk in enumerate(chunks)]


class AdminClient:
    """A short-lived MQTT v5 connection for the admin commands."""

    def __init__(self, url: str, prefix: str = "edge-gate", username: str | None = None,
                 password: str | None = None) -> None:
        cfg = MqttConfig(url=url, topic_prefix=prefix)
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-gate-admin-{time.time_ns()}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        if cfg.tls:
            self.client.tls_set()
        self.client.on_message = self._on_message
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set() if not rc.is_failure else None
        self.client.connect(cfg.host, cfg.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise ConnectionError(f"cannot connect to {url}")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def subscribe(self, topics: list[str]) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        done.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(30)
        if not info.is_published():
            raise ConnectionError(f"publish to {topic} was not acknowledged")

    def wait(self, count: int, timeout: float) -> list[tuple[str, bytes]]:
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def push(client: AdminClient, community: str, kind: str, payloads: list[bytes], version: int,
         gate: str | None = None, wait_acks: int = 0, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Publish a push (and the retained `current` pointer for community snapshots); collect acks."""
    base = f"{client.prefix}/{community}" + (f"/{gate}" if gate else "")
    client.subscribe([f"{client.prefix}/{community}/+/whitelist/ack"])
    for payload in payloads:
        client.publish(f"{base}/whitelist/{kind}", payload)
    if kind == "snapshot" and gate is None:
        pointer = {"schema": CURRENT_SCHEMA, "version": version, "issued_at": datetime.now(UTC).isoformat()}
        client.publish(f"{client.prefix}/{community}/whitelist/current", json.dumps(pointer).encode(), retain=True)
    acks: list[dict[str, Any]] = []
    end = time.monotonic() + timeout
    while len(acks) < wait_acks and time.monotonic() < end:
        msgs = client.wait(len(acks) + 1, end - time.monotonic())
        acks = [a for _t, p in msgs if (a := _json(p)) is not None and a.get("version") == version]
    return acks


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
