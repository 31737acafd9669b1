"""The signing test vectors of docs/protocol/test-vectors.json: messages as signed, their exact RFC 8785
form and Ed25519 signature, for implementers to check their JCS and signing against (and for our
own Python and Node checks). Made from a fixed test key, so the file is the same on every run;
`python scripts/make_test_vectors.py` rewrites it, a test keeps it in step with the code."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol.signing import SigningKey, canonical_json

# A published test key: it signs these vectors and nothing else. Never trust it in a gate.
TEST_SEED = hashlib.sha256(b"edge-gate protocol v2 test vectors").digest()
VECTORS_FILE = Path(__file__).resolve().parents[2] / "docs" / "protocol" / "test-vectors.json"

_DELTA = {
    "schema": "edge-gate/whitelist-delta/2", "community": "maple-court", "gate": None, "version": 24,
    "base_version": 23, "issued_at": "2026-12-01T08:00:00.000000Z", "expires_at": "2026-12-02T08:00:00.000000Z",
    "upserts": [{"id": "R042", "name": "Li Wei 李伟", "kind": "resident", "status": "active", "unit": "3-1201",
                 "care_watch_hours": 1e-7, "allowed_gates": [], "directions": ["in", "out"],
                 "schedule": {"mon": [["07:00", "22:00"]]},
                 "templates": {"model_id": "sface_2021dec", "embeddings": ["AACAPwAAAEA="]}}],
    "patches": [{"id": "V007", "status": "suspended"}], "deletes": ["R001"],
}
_EVENT = {
    "schema": "edge-gate/event/2", "event_id": "01JE3Q7Z6X8V2M4N5P6R7S8T9V", "ts": "2026-12-01T08:15:02.123456Z",
    "gate_id": "north-1", "direction": "in", "person_id": "R042", "decision": "grant",
    "reasons": [{"code": "ok", "effect": "allow", "params": {}}], "alarms": [],
    "temperature": {"body_c": 36.55, "raw_c": 34.9, "source": "spot", "offset_c": 0.0, "ambient_c": 21.5,
                    "ambient_correction_c": 0.35, "face_width_px": 142.0, "distance_m": 0.45,
                    "distance_correction_c": 1.3, "blackbody_correction_c": None, "region_pixels": 0, "valid": True,
                    "reason": None},
    "scores": {"score": 0.7123, "margin": 0.3311, "votes": 2, "window": 3, "track_id": 17, "latency_ms": 412.5,
               "face_px": 142.0, "guard": None},
}

_ALARM_GROUP = {  # a grouped alarm's update: the same id as its first message, with count and last_seen
    "schema": "edge-gate/alarm/2", "id": "01JE3Q9A1B2C3D4E5F6G7H8J9K", "ts": "2026-12-01T08:20:00.000000Z",
    "kind": "whitelist_rejected", "severity": "warning",
    "message": "whitelist push rejected (malformed_json): not valid JSON",
    "details": {"code": "malformed_json", "kind": "unknown", "version": None,
                "topic": "edge-gate/maple-court/whitelist/delta", "push_digest": None, "rejected_since_last": 212},
    "gate_id": "north-1", "person_id": None, "count": 1000, "last_seen": "2026-12-01T08:29:41.500000Z",
}


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(name, message, tampered copy or None)."""
    tampered_delta = json.loads(json.dumps(_DELTA))
    tampered_delta["patches"][0]["status"] = "active"
    return [
        ("whitelist-delta", _DELTA, None),
        ("whitelist-delta-tampered", _DELTA, tampered_delta),
        ("event", _EVENT, None),
        ("event-tampered-gate", _EVENT, {**_EVENT, "gate_id": "gate-evil"}),
        ("alarm-group-update", _ALARM_GROUP, None),
        ("alarm-group-tampered-count", _ALARM_GROUP, {**_ALARM_GROUP, "count": 1}),
        ("floats-with-exponents", {"a": 1e-7, "b": 1e21, "c": 1.5e300, "d": 5e-324, "e": -2.5e-8,
                                   "f": 123456789.125}, None),
        ("integers-written-as-floats", {"three": 3.0, "hundred": 100.0, "minus_seven": -7.0, "zero": -0.0,
                                        "big": 9007199254740991}, None),
        ("non-ascii", {"name": "Zoë 李伟 😀", "unit": "Ⅲ-12", "é": "é"}, None),
        ("escapes", {"s": "line\nbreak\ttab \"quoted\" back\\slash \u0001\u001f \u2028 \u007f /"}, None),
        ("key-order-utf16", {"\ufb33": 1, "\U0001f600": 2, "é": 3, "a": 4, "B": 5, "": 6}, None),
        ("nested-arrays", {"m": [[1, [2, [3.5, []]]], {"z": [{}], "a": [None, True, False]}]}, None),
    ]


def make_vectors() -> dict[str, Any]:
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(TEST_SEED))
    out = []
    for name, message, tampered in _cases():
        signed = key.sign(message)["signature"]["value"]
        shown = tampered if tampered is not None else message
        out.append({"name": name, "public_key": key.public_text, "key_id": key.key_id, "message": shown,
                    "canonical": canonical_json(shown).decode("utf-8"), "signature": signed,
                    "valid": tampered is None})
    return {"description": "edge-gate protocol v2 signing test vectors (docs/protocol.md, Signatures). "
            "canonical = RFC 8785 of message; signature = Ed25519 over its UTF-8 bytes, standard base64; "
            "valid=false: the message was changed after signing.", "vectors": out}


def vectors_text() -> str:
    return json.dumps(make_vectors(), ensure_ascii=False, indent=2) + "\n"


def check_vector(v: dict[str, Any]) -> list[str]:
    """What is wrong with one vector when checked with this project's code ([] when it holds)."""
    from edge.protocol.signing import SignatureError, key_id, parse_public_key, verify

    problems = []
    public = parse_public_key(v["public_key"])
    if key_id(public) != v["key_id"]:
        problems.append("key_id")
    if canonical_json(v["message"]).decode("utf-8") != v["canonical"]:
        problems.append("canonical")
    doc = {**v["message"], "signature": {"alg": "ed25519", "key_id": v["key_id"], "value": v["signature"]}}
    try:
        verify(doc, [public])
        ok = True
    except SignatureError:
        ok = False
    if ok != v["valid"]:
        problems.append(f"signature verifies={ok}, valid={v['valid']}")
    base64.b64decode(v["signature"], validate=True)
    return problems
