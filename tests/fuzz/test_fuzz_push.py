"""Signed whitelist pushes beyond tests/test_messages.py and tests/sync/test_whitelist.py: canonical-JSON
signatures over arbitrary payloads (stable under member order and layout, broken by any change of
content), one-byte mutations of a signed push, deeply nested JSON, and arbitrary signed deltas and
snapshots applied to a real SQLite store: every outcome is a documented ack, and a rejection leaves
the store as it was."""

from __future__ import annotations

import base64
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzz_helpers import dumps_any_style, fuzz_settings, json_objects, json_values, reorder, wire_text
from hypothesis import event, given, reject
from hypothesis import strategies as st
from sync_helpers import COMMUNITY, GATE, MODEL, delta, dump_whitelist, entry, snapshot

from edge.protocol.messages import DELTA_SCHEMA, SNAPSHOT_SCHEMA, RejectedPush, parse_push
from edge.protocol.payloads import WhitelistAck
from edge.protocol.signing import SIGNATURE_FIELD, AdminKey, CanonicalError, SignatureError, canonical_json, verify
from edge.store import Store
from edge.sync.whitelist import WhitelistApplier
from tests.support.wire import signed

pytestmark = pytest.mark.fuzz
ADMIN = AdminKey.generate()
CODES = {"oversize", "malformed_json", "unknown_schema", "bad_signature", "invalid", "expired"}


def _signature(payload: dict[str, Any]) -> bytes:
    return base64.b64decode(payload[SIGNATURE_FIELD]["value"])


# ------------------------------------------------------------------------------ signatures


def _sign_or_reject(payload: dict[str, Any]) -> dict[str, Any]:
    """Signed; a payload RFC 8785 cannot write (an integer beyond 2**53) is no test case here (see below)."""
    try:
        return ADMIN.sign(payload)
    except CanonicalError:
        reject()


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**63])
def test_an_integer_beyond_the_jcs_range_can_be_neither_signed_nor_verified(value: int) -> None:
    with pytest.raises(CanonicalError):
        ADMIN.sign({"version": value})
    forged = {**ADMIN.sign({"version": 1}), "version": value}
    with pytest.raises(SignatureError, match="cannot be checked"):
        verify(forged, [ADMIN.public])


@fuzz_settings(150)
@given(json_objects(), st.integers(0, 2**32), st.integers(0, 15))
def test_signature_survives_member_order_and_layout(payload: dict[str, Any], seed: int, style: int) -> None:
    signed = _sign_or_reject(payload)
    again = json.loads(dumps_any_style(reorder(signed, random.Random(seed)), style))
    assert canonical_json(again) == canonical_json(payload)
    assert verify(again, [ADMIN.public]) == ADMIN.key_id


@fuzz_settings(300)
@given(json_objects(), st.integers(0, 15), st.data())
def test_no_one_byte_change_is_accepted_with_other_content(payload: dict[str, Any], style: int,
                                                           data: st.DataObject) -> None:
    signed = _sign_or_reject(payload)
    raw = dumps_any_style(signed, style)
    pos = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    mutated = raw[:pos] + bytes([new]) + raw[pos + 1:]
    try:
        value = json.loads(mutated.decode("utf-8"))
    except ValueError:
        return  # not UTF-8 or not JSON any more
    if not isinstance(value, dict):
        return
    try:
        verify(value, [ADMIN.public])
    except SignatureError:
        return  # the change was noticed
    # accepted: only a change the canonical form does not see (e.g. 1e5 -> 1E5, an escape for a letter)
    assert canonical_json(value) == canonical_json(payload)
    assert _signature(value) == _signature(signed)


@fuzz_settings(200)
@given(st.data())
def test_one_byte_change_of_a_signed_push_is_rejected_or_changes_nothing(data: st.DataObject) -> None:
    raw = delta(ADMIN, 3, [entry("R1", 1), entry("R2", 2, name="王芳")], deletes=["R9"])
    original = parse_push(raw, [ADMIN.public])
    pos = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    try:
        push = parse_push(raw[:pos] + bytes([new]) + raw[pos + 1:], [ADMIN.public])
    except RejectedPush as exc:
        assert exc.code in CODES
        return
    assert push.model_dump() == original.model_dump()


@pytest.mark.parametrize("depth", [500, 990, 20_000])
def test_deeply_nested_json_is_a_rejected_push(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for text in (nested, f'{{"schema": "{DELTA_SCHEMA}", "x": {nested}}}'):
        with pytest.raises(RejectedPush) as err:
            parse_push(text.encode(), [ADMIN.public])
        assert err.value.code in CODES


# ------------------------------------------------------------------------------ arbitrary signed pushes

NOW = datetime.now(UTC)
odd_times = st.sampled_from([
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z", "2020-01-01T00:00:00",
    "2020-02-30T00:00:00Z", "not a time", "", 0, -1e20, True, None]) | st.datetimes(
    timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=14)))).map(datetime.isoformat)
good_ids = st.from_regex(r"[A-Za-z0-9_.:@-]{1,8}", fullmatch=True)
person_ids = st.one_of(good_ids, good_ids, good_ids, wire_text)
fair_times = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(datetime.isoformat)
hhmm = st.sampled_from(["00:00", "07:30", "23:59", "24:00", "24:01", "25:00", "7:30", "xx"])
schedules = st.dictionaries(st.sampled_from(["mon", "tue", "sun", "fun"]),
                            st.lists(st.lists(hhmm, min_size=0, max_size=3), max_size=3), max_size=3)


@st.composite
def embeddings(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(wire_text)  # not base64
    dim = draw(st.sampled_from([0, 1, 3, 128]))
    values = np.random.default_rng(draw(st.integers(0, 2**32))).standard_normal(dim).astype("<f4")
    if kind == 1 and dim:
        values[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return base64.b64encode(values.tobytes()).decode()


def person_entries() -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "name": wire_text | st.text(min_size=190, max_size=210), "kind": st.sampled_from(["resident", "visitor", "x"]),
        "status": st.sampled_from(["active", "suspended", "blocked", "gone"]), "unit": st.none() | wire_text,
        "valid_from": fair_times | odd_times, "valid_until": fair_times | odd_times,
        "max_uses": st.none() | st.integers(-2, 5),
        "allowed_gates": st.lists(st.sampled_from([GATE, "other", ""]), max_size=2),
        "directions": st.lists(st.sampled_from(["in", "out", "up"]), max_size=2), "schedule": st.none() | schedules,
        "care_watch_hours": st.none() | st.floats(-1, 400), "templates": st.fixed_dictionaries(
            {"model_id": st.sampled_from([MODEL, "arcface_r100"]),
             "embeddings": st.lists(embeddings(), min_size=1, max_size=3) | st.just([])}),
        "photo_jpeg": st.sampled_from([base64.b64encode(b"\xff\xd8 not a jpeg").decode(), "%%%"]),
    }
    named = st.fixed_dictionaries({"id": person_ids, "name": fields.pop("name")}, optional=fields)
    odd = st.fixed_dictionaries({"id": person_ids}, optional={"extra": json_values(4), "name": st.integers()})
    return st.one_of(named, named, named, odd)


pushes = st.tuples(
    st.sampled_from(["delta", "snapshot"]),
    st.lists(person_entries() | st.integers(0, 50).map(lambda i: entry(f"G{i}", i)), max_size=5),
    st.lists(person_ids | st.sampled_from(["B1", "B2"]), max_size=3),
    st.just({}) | st.fixed_dictionaries({}, optional={
        "community": st.sampled_from([COMMUNITY, "elsewhere", "bad/level"]),
        "gate": st.sampled_from([None, GATE, "gate-z"]), "version": st.integers(-1, 4) | st.just(2**63),
        "base_version": st.integers(0, 3), "issued_at": odd_times, "expires_at": odd_times,
        "chunks": st.integers(0, 3), "total_persons": st.integers(-1, 6)}),
)


def _make(kind: str, upserts: list[dict[str, Any]], deletes: list[str], over: dict[str, Any]) -> bytes:
    """A push built by the sync suite's helpers, then with `over` changed and signed again."""
    try:
        raw = delta(ADMIN, 2, upserts, deletes=deletes, base=1) if kind == "delta" else snapshot(ADMIN, 2, upserts)[0]
        body = json.loads(raw)
        body.update(over)
        return json.dumps(ADMIN.sign(body), ensure_ascii=False).encode()
    except CanonicalError:  # e.g. a version beyond 2**53: no RFC 8785 form, so nobody can sign it
        reject()


@fuzz_settings(300)
@given(pushes)
def test_arbitrary_signed_pushes_parse_or_are_rejected_with_a_code(push: tuple[Any, ...]) -> None:
    try:
        parsed = parse_push(_make(*push), [ADMIN.public])
    except RejectedPush as exc:
        assert exc.code in CODES, exc.code
    else:
        assert parsed.schema_ in (DELTA_SCHEMA, SNAPSHOT_SCHEMA) and parsed.expires_at > parsed.issued_at


@fuzz_settings(150)
@given(pushes)
def test_arbitrary_signed_pushes_applied_to_a_real_store_are_acked_and_atomic(push: tuple[Any, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "gate.sqlite")
        try:
            wl = WhitelistApplier(store, None, MODEL, [ADMIN.public], community=COMMUNITY, gate_id=GATE)
            base = wl.handle(delta(ADMIN, 1, [entry("B1", 1), entry("B2", 2)], base=0))
            assert base is not None and base["status"] == "applied"
            before = dump_whitelist(store.path)
            ack = wl.handle(_make(*push), "edge-gate/sunny-gardens/whitelist/delta")
            after = dump_whitelist(store.path)
        finally:
            store.close()
    if ack is None:  # another gate's push, or a snapshot chunk waiting for the others
        assert {k: after[k] for k in ("persons", "templates", "meta")} == \
            {k: before[k] for k in ("persons", "templates", "meta")}
        return
    doc = WhitelistAck.model_validate(signed(ack))  # every answer is a documented ack
    event(f"{doc.status} {doc.code}")
    if doc.status == "rejected":
        assert {k: after[k] for k in ("persons", "templates", "meta")} == \
            {k: before[k] for k in ("persons", "templates", "meta")}, doc.code
        assert doc.current_version == 1
    else:
        assert doc.status == "applied" and doc.current_version == doc.version == push[3].get("version", 2)
        skipped = {e.id for e in doc.errors if not e.applied}
        names = {row[0]: row[1] for row in after["persons"]}
        kind, upserts, deletes, _ = push
        for e in upserts:
            if e["id"] not in skipped:
                assert names.get(e["id"]) == e.get("name"), e["id"]
        if kind == "delta":
            assert not set(deletes) & set(names)
        else:  # a snapshot replaces the whitelist: nobody else is left (a skipped entry keeps its old record)
            assert set(names) <= {e["id"] for e in upserts}


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_time_beyond_utc_range_is_an_entry_error_not_a_crash(tmp_path: Path, when: str) -> None:
    store = Store.open(tmp_path / "gate.sqlite")
    try:
        wl = WhitelistApplier(store, None, MODEL, [ADMIN.public], community=COMMUNITY, gate_id=GATE)
        ack = wl.handle(delta(ADMIN, 1, [entry("R1", 1, valid_from=when), entry("R2", 2)], base=0))
        assert ack is not None
        doc = WhitelistAck.model_validate(signed(ack))
        assert doc.status == "applied" and [(e.id, e.code, e.applied) for e in doc.errors] == [
            ("R1", "invalid_entry", False)]
        assert store.get_person("R1") is None and store.get_person("R2") is not None
    finally:
        store.close()
