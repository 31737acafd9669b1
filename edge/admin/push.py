"""The community admin's side: keys, signed whitelist pushes from a CSV/JSON person file, and
watching events and acks. It uses the same message and signature code as the gate.

Person files (one person per row/object): id, name, kind, status, unit, valid_from, valid_until,
max_uses, care_watch_hours, and either `photo` (path of a face photo, relative to the file) or
`embeddings` (lists of floats, with `model_id`). A delta file may also name `deletes` (JSON) or rows
whose `action` is `delete` (CSV).

Every message stays within what a gate accepts (MAX_PAYLOAD_BYTES serialised and signed,
MAX_ENTRIES_PER_MESSAGE per list): snapshots are chunked by both, a delta too large for one message
becomes consecutive versions (see build_push). Community-wide pushes keep the latest delta and the
`whitelist/current` pointer retained, so a gate that was offline catches up (see push).
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import ssl
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config.mqtt import MqttConfig
from edge.protocol.messages import (
    DELTA_SCHEMA,
    MAX_ENTRIES_PER_MESSAGE,
    MAX_PAYLOAD_BYTES,
    SNAPSHOT_SCHEMA,
    PersonEntry,
)
from edge.protocol.payloads import CURRENT_SCHEMA
from edge.protocol.signing import AdminKey, public_key_text

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


def _size(value: Any) -> int:
    """Bytes of `value` serialised as the pushes are (json.dumps, ensure_ascii=False, UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False).encode())


def _serialise(key: AdminKey, body: dict[str, Any]) -> bytes:
    return json.dumps(key.sign(body), ensure_ascii=False).encode()


def _pack(items: list[tuple[str, Any]], overhead: int, max_bytes: int, max_entries: int) -> list[list[tuple[str, Any]]]:
    """Greedy split of (list name, item) pairs into messages of at most max_bytes (overhead included)
    and at most max_entries items per list, keeping their order."""
    parts: list[list[tuple[str, Any]]] = []
    part: list[tuple[str, Any]] = []
    size, counts = overhead, Counter[str]()
    for name, item in items:
        need = _size(item) + 2  # ", " between list items
        if overhead + need > max_bytes:
            what = item.get("id") if isinstance(item, dict) else item
            raise ValueError(f"person {what}: its entry of {need} bytes cannot fit a message of {max_bytes} bytes")
        if part and (size + need > max_bytes or counts[name] >= max_entries):
            parts.append(part)
            part, size, counts = [], overhead, Counter()
        part.append((name, item))
        size += need
        counts[name] += 1
    if part:
        parts.append(part)
    return parts


def build_push(key: AdminKey, community: str, kind: str, upserts: list[dict[str, Any]], deletes: list[str], *,
               version: int, base_version: int | None = None, gate: str | None = None,
               valid_for: timedelta = timedelta(days=1), now: datetime | None = None,
               max_bytes: int = MAX_PAYLOAD_BYTES, max_entries: int = MAX_ENTRIES_PER_MESSAGE) -> list[bytes]:
    """Signed payloads, each at most `max_bytes` serialised and signed and at most `max_entries`
    entries per list, the limits a gate enforces (MAX_PAYLOAD_BYTES, MAX_ENTRIES_PER_MESSAGE).

    A snapshot becomes chunks of one version (the gate applies them together once all are in).
    A delta too large for one message becomes consecutive deltas `version`, `version + 1`, ..., each
    building on the one before (the first on `base_version`): every part is a whole, signed delta the
    gate checks like any other, so the version chain and its gap rule stay as they are (a gate that
    misses a part refuses the next as a gap and asks for a snapshot) and old gates understand them.
    The price: a gate applies the parts one by one, so for a moment it may hold the list of
    `version + 1` (a consistent list, only not yet the last one). Deletes go first.
    """
    if not 0 < max_bytes <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"max_bytes must be 1..{MAX_PAYLOAD_BYTES} (gates refuse larger messages)")
    if not 0 < max_entries <= MAX_ENTRIES_PER_MESSAGE:
        raise ValueError(f"max_entries must be 1..{MAX_ENTRIES_PER_MESSAGE} (gates refuse more)")
    now = now or datetime.now(UTC)
    common: dict[str, Any] = {"community": community, "gate": gate, "version": version,
                              "issued_at": now.isoformat(), "expires_at": (now + valid_for).isoformat()}
    margin = 64  # the numbers of the real messages (version, chunk) are no longer than this in all
    if kind == "delta":
        base = version - 1 if base_version is None else base_version
        empty = {"schema": DELTA_SCHEMA, **common, "base_version": base, "upserts": [], "deletes": []}
        items = [("deletes", d) for d in deletes] + [("upserts", u) for u in upserts]
        parts = _pack(items, _size(key.sign(empty)) + margin, max_bytes, max_entries) or [[]]
        out = []
        for i, part in enumerate(parts):
            body = {**empty, "version": version + i, "base_version": base if i == 0 else version + i - 1,
                    "upserts": [u for n, u in part if n == "upserts"],
                    "deletes": [d for n, d in part if n == "deletes"]}
            out.append(_serialise(key, body))
    elif kind == "snapshot":
        if deletes:
            raise ValueError("a snapshot replaces the whole list: it has no deletes")
        empty = {"schema": SNAPSHOT_SCHEMA, **common, "chunk": 0, "chunks": 1, "total_persons": len(upserts),
                 "entries": []}
        chunks = _pack([("entries", u) for u in upserts], _size(key.sign(empty)) + margin, max_bytes,
                       max_entries) or [[]]
        out = [_serialise(key, {**empty, "chunk": i, "chunks": len(chunks), "entries": [e for _n, e in chunk]})
               for i, chunk in enumerate(chunks)]
    else:
        raise ValueError(f"kind must be snapshot or delta, not {kind!r}")
    too_big = [len(p) for p in out if len(p) > max_bytes]
    if too_big:  # the margin above makes this impossible; checked all the same, a gate would refuse it
        raise RuntimeError(f"built a message of {max(too_big)} bytes, over the limit of {max_bytes}")
    return out


def payload_version(payload: bytes) -> int:
    """The `version` of a signed push payload (from build_push)."""
    value = _json(payload)
    if value is None or not isinstance(value.get("version"), int):
        raise ValueError("not a push payload")
    return int(value["version"])


class AdminClient:
    """A short-lived MQTT v5 connection for the admin commands; mqtts:// with the system's CAs or
    `tls_ca`, and a client certificate (`tls_cert` + `tls_key`) where the broker asks for one."""

    def __init__(self, url: str, prefix: str = "edge-gate", username: str | None = None,
                 password: str | None = None, *, tls_ca: Path | None = None, tls_cert: Path | None = None,
                 tls_key: Path | None = None, tls_min_version: Literal["1.2", "1.3"] = "1.2") -> None:
        cfg = MqttConfig(url=url, topic_prefix=prefix, tls_ca_file=tls_ca, tls_cert_file=tls_cert,
                         tls_key_file=tls_key, tls_min_version=tls_min_version)
        self.url = url
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self.retained: list[bool] = []  # per message: sent because it was retained (not live)
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-gate-admin-{time.time_ns()}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        if cfg.tls:
            self.client.tls_set_context(cfg.ssl_context())
        self.client.on_message = self._on_message
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client.on_connect = self._on_connect
        try:
            self.client.connect(cfg.host, cfg.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionError(f"cannot connect to {url}: the broker's TLS certificate is not trusted "
                                  f"({exc.verify_message or exc}); give the broker's CA with --tls-ca") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionError(f"cannot connect to {url}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise ConnectionError(f"cannot connect to {url}: " + (self._refused or "no CONNACK within 10 s"))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            self._refused = f"the broker refused the connection ({rc})"
        else:
            self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.retained.append(bool(msg.retain))
            self._cond.notify_all()

    def subscribe(self, topics: list[str]) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        done.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False, expiry_s: int | None = None) -> None:
        """QoS 1, waits for the PUBACK; `expiry_s`: the broker drops the (retained) message after it."""
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = max(1, int(expiry_s))
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
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


def push(client: AdminClient, community: str, kind: str, payloads: list[bytes], version: int | None = None,
         gate: str | None = None, wait_acks: int = 0, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Publish a push from build_push; collect the gates' acks of its last version (one per gate).

    Community-wide pushes also keep the community's state on the broker for gates that are offline:
    each delta is published retained (with a message expiry at its `expires_at`), so the latest one
    waits for them; a snapshot clears that retained delta (the snapshot supersedes it); and the
    retained `whitelist/current` pointer names the newest version. A gate coming back applies the
    retained delta if it builds on its version, else asks for a snapshot (see edge.sync.whitelist).
    `version`, if given, must be the first payload's (a split delta's later parts count up from it).
    """
    if not payloads:
        raise ValueError("nothing to push")
    if version is not None and version != payload_version(payloads[0]):
        raise ValueError(f"version {version} is not the version of the payloads ({payload_version(payloads[0])})")
    final = payload_version(payloads[-1])
    community_wide = gate is None
    base = f"{client.prefix}/{community}" + (f"/{gate}" if gate else "")
    with client._cond:
        since = len(client.messages)
    client.subscribe([f"{client.prefix}/{community}/+/whitelist/ack"])
    for payload in payloads:
        expiry = None
        if kind == "delta" and community_wide:
            expires = datetime.fromisoformat(str((_json(payload) or {})["expires_at"]))
            expiry = int((expires - datetime.now(UTC)).total_seconds())
        client.publish(f"{base}/whitelist/{kind}", payload, retain=expiry is not None, expiry_s=expiry)
    if community_wide:
        if kind == "snapshot":
            client.publish(f"{base}/whitelist/delta", b"", retain=True)  # clears the retained delta
        pointer = {"schema": CURRENT_SCHEMA, "version": final, "issued_at": datetime.now(UTC).isoformat()}
        client.publish(f"{client.prefix}/{community}/whitelist/current", json.dumps(pointer).encode(), retain=True)
    acks: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + timeout
    seen = since
    while len(acks) < wait_acks and (left := end - time.monotonic()) > 0:
        msgs = client.wait(seen + 1, left)
        with client._cond:
            retained = list(client.retained)
        for i in range(seen, len(msgs)):
            ack = _json(msgs[i][1])
            # a retained ack is an old answer; an `outdated` one answers the pointer, not this push
            if (ack is not None and not retained[i] and ack.get("version") == final
                    and ack.get("kind") == kind and isinstance(ack.get("gate"), str)):
                acks[ack["gate"]] = ack
        seen = len(msgs)
    return list(acks.values())


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
