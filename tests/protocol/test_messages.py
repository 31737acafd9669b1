"""Signed whitelist messages: canonical JSON, Ed25519 verification, every rejection has a code."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol.messages import DELTA_SCHEMA, SNAPSHOT_SCHEMA, RejectedPush, parse_push
from edge.protocol.signing import AdminKey, canonical_json, parse_public_key, public_key_text

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _emb(seed: int) -> str:
    v = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    return base64.b64encode((v / np.linalg.norm(v)).astype("<f4").tobytes()).decode()


def delta(version: int = 2, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": DELTA_SCHEMA, "community": "sunny-gardens", "gate": None, "version": version,
        "base_version": version - 1, "issued_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(days=1)).isoformat(),
        "upserts": [{"id": "R1", "name": "王芳", "unit": "3-402",
                     "templates": {"model_id": "sface_2021dec", "embeddings": [_emb(1), _emb(2)]}}],
        "deletes": ["R9"],
    }
    body.update(over)
    return body


@pytest.fixture(scope="module")
def admin() -> AdminKey:
    return AdminKey.generate()


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def test_signed_delta_verifies_and_parses(admin: AdminKey) -> None:
    push = parse_push(raw(admin.sign(delta())), [admin.public], now=NOW)
    assert push.version == 2 and push.upserts[0].name == "王芳"  # type: ignore[union-attr]
    assert push.upserts[0].templates.arrays().shape == (2, 128)  # type: ignore[union-attr]


def test_key_round_trips_through_config_text(admin: AdminKey) -> None:
    pub = parse_public_key(public_key_text(admin.public))
    parse_push(raw(admin.sign(delta())), [pub], now=NOW)


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    a = {"b": 1, "a": [1, 2], "signature": {"x": 1}}
    assert canonical_json(a) == canonical_json(json.loads(json.dumps({"a": [1, 2], "b": 1}, indent=4)))


@pytest.mark.parametrize("case,code", [
    ("tampered", "bad_signature"), ("unsigned", "bad_signature"), ("other_key", "bad_signature"),
    ("malformed", "malformed_json"), ("nan", "malformed_json"), ("schema", "unknown_schema"),
    ("expired", "expired"), ("invalid", "invalid"), ("oversize", "oversize"), ("not_object", "malformed_json"),
])
def test_every_bad_push_is_rejected_with_a_code(admin: AdminKey, case: str, code: str) -> None:
    signed = admin.sign(delta())
    if case == "tampered":
        signed["upserts"][0]["status"] = "active"
        signed["deletes"] = []
        data = raw(signed)
    elif case == "unsigned":
        data = raw(delta())
    elif case == "other_key":
        data = raw(AdminKey.generate().sign(delta()))
    elif case == "malformed":
        data = raw(signed)[:-5]
    elif case == "nan":
        data = raw(signed).replace(b'"version": 2', b'"version": NaN')
    elif case == "schema":
        data = raw(admin.sign(delta(schema="edge-gate/whitelist-delta/9")))
    elif case == "expired":
        data = raw(admin.sign(delta(expires_at=(NOW - timedelta(seconds=1)).isoformat(),
                                    issued_at=(NOW - timedelta(days=1)).isoformat())))
    elif case == "invalid":
        data = raw(admin.sign(delta(upserts=[{"id": "bad id with spaces", "name": "x"}])))
    elif case == "oversize":
        data = b" " * (16 * 1024 * 1024 + 1)
    else:
        data = b"[1, 2, 3]"
    with pytest.raises(RejectedPush) as err:
        parse_push(data, [admin.public], now=NOW)
    assert err.value.code == code


def test_snapshot_chunk_schema(admin: AdminKey) -> None:
    chunk = {"schema": SNAPSHOT_SCHEMA, "community": "c", "version": 5, "issued_at": NOW.isoformat(),
             "expires_at": (NOW + timedelta(hours=1)).isoformat(), "chunk": 0, "chunks": 2, "total_persons": 1,
             "gates": [], "entries": [{"id": "V1", "name": "Visitor", "kind": "visitor", "max_uses": 2,
                          "photo_jpeg": base64.b64encode(b"\xff\xd8jpeg").decode()}]}
    push = parse_push(raw(admin.sign(chunk)), [admin.public], now=NOW)
    assert push.chunks == 2  # type: ignore[union-attr]
    bad = dict(chunk, chunk=2)
    with pytest.raises(RejectedPush):
        parse_push(raw(admin.sign(bad)), [admin.public], now=NOW)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_escape_as_anything_but_rejectedpush(data: bytes) -> None:
    with pytest.raises(RejectedPush):  # no key is trusted: nothing can pass, and only RejectedPush escapes
        parse_push(data, [], now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_is_rejected_cleanly(value: object) -> None:
    with pytest.raises(RejectedPush):
        parse_push(json.dumps(value).encode(), [AdminKey.generate().public], now=NOW)
