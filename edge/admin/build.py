"""Signed whitelist pushes within what a gate accepts (MAX_PAYLOAD_BYTES serialised and signed,
MAX_ENTRIES_PER_MESSAGE per list): snapshots are chunked by both, a delta too large for one message
becomes consecutive versions (see build_push)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.protocol.limits import MAX_ENTRIES_PER_MESSAGE, MAX_PAYLOAD_BYTES
from edge.protocol.messages import DELTA_SCHEMA, SNAPSHOT_SCHEMA
from edge.protocol.signing import AdminKey
from edge.records import ts_text


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
               max_bytes: int = MAX_PAYLOAD_BYTES, max_entries: int = MAX_ENTRIES_PER_MESSAGE,
               gates: list[dict[str, str]] | None = None, patches: list[dict[str, Any]] | None = None) -> list[bytes]:
    """Signed payloads, each at most `max_bytes` serialised and signed and at most `max_entries`
    entries per list, the limits a gate enforces (MAX_PAYLOAD_BYTES, MAX_ENTRIES_PER_MESSAGE).

    A snapshot becomes chunks of one version (the gate applies them together once all are in).
    A delta too large for one message becomes consecutive deltas `version`, `version + 1`, ..., each
    building on the one before (the first on `base_version`): every part is a whole, signed delta the
    gate checks like any other, so the version chain and its gap rule stay as they are (a gate that
    misses a part refuses the next as a gap and asks for a snapshot) and old gates understand them.
    The price: a gate applies the parts one by one, so for a moment it may hold the list of
    `version + 1` (a consistent list, only not yet the last one). Deletes go first, then patches.
    `gates`: the community's member gates (edge.admin.gates); every snapshot chunk carries them (none
    given: an empty list), a delta only when given (it then replaces the gates' list).
    """
    if not 0 < max_bytes <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"max_bytes must be 1..{MAX_PAYLOAD_BYTES} (gates refuse larger messages)")
    if not 0 < max_entries <= MAX_ENTRIES_PER_MESSAGE:
        raise ValueError(f"max_entries must be 1..{MAX_ENTRIES_PER_MESSAGE} (gates refuse more)")
    now = now or datetime.now(UTC)
    common: dict[str, Any] = {"community": community, "gate": gate, "version": version,
                              "issued_at": ts_text(now), "expires_at": ts_text(now + valid_for)}
    margin = 64  # the numbers of the real messages (version, chunk) are no longer than this in all
    if kind == "delta":
        base = version - 1 if base_version is None else base_version
        empty = {"schema": DELTA_SCHEMA, **common, "base_version": base, "upserts": [], "patches": [], "deletes": []}
        if gates is not None:
            empty["gates"] = gates
        items = ([("deletes", d) for d in deletes] + [("patches", p) for p in patches or []]
                 + [("upserts", u) for u in upserts])
        parts = _pack(items, _size(key.sign(empty)) + margin, max_bytes, max_entries) or [[]]
        out = []
        for i, part in enumerate(parts):
            body = {**empty, "version": version + i, "base_version": base if i == 0 else version + i - 1,
                    "upserts": [u for n, u in part if n == "upserts"],
                    "patches": [p for n, p in part if n == "patches"],
                    "deletes": [d for n, d in part if n == "deletes"]}
            out.append(_serialise(key, body))
    elif kind == "snapshot":
        if deletes or patches:
            raise ValueError("a snapshot replaces the whole list: it has no deletes or patches")
        empty = {"schema": SNAPSHOT_SCHEMA, **common, "chunk": 0, "chunks": 1, "total_persons": len(upserts),
                 "entries": [], "gates": gates or []}
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
    value = json_object(payload)
    if value is None or not isinstance(value.get("version"), int):
        raise ValueError("not a push payload")
    return int(value["version"])


def json_object(payload: bytes) -> dict[str, Any] | None:
    """`payload` parsed as a JSON object, or None when it is not one."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
