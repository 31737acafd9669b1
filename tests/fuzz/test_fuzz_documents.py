"""The MQTT documents of edge/sync/topics.py: what the gate publishes (event and alarm outbox rows, the
retained state) always matches its documented schema and is strict JSON, for any content the records
accept; what it takes in (peer-gate events, the admin's `whitelist/current` pointer) never raises on
arbitrary bytes, and a peer event is accepted only from its own gate's topic, unchanged."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
from fuzz_helpers import fuzz_settings, json_objects, json_values, wire_text
from hypothesis import given, reject
from hypothesis import strategies as st
from pydantic import ValidationError
from sync_helpers import COMMUNITY, GATE, MODEL

from edge.config.mqtt import MqttConfig
from edge.protocol.payloads import (
    CURRENT_SCHEMA,
    EVENT_SCHEMA,
    AlarmMessage,
    EventMessage,
    ReasonCode,
    StateMessage,
    WhitelistAck,
    WhitelistCurrent,
)
from edge.protocol.signing import SigningKey, canonical_json, verify
from edge.store import AlarmRecord, EventRecord, Store
from edge.sync.identity import jcs_safe
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from tests.support.wire import signed

pytestmark = pytest.mark.fuzz
PREFIX = MqttConfig().topic_prefix


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        s = Store.open(Path(tmp) / "gate.sqlite")
        try:
            yield s
        finally:
            s.close()


def strict_json(text: str) -> Any:
    """Parse as a server would: NaN and Infinity are not JSON."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def _same_json(a: Any, b: Any) -> bool:
    """The same JSON value (RFC 8785: 1 and 1.0 are one number)."""
    return bool(canonical_json({"v": jcs_safe(a)}) == canonical_json({"v": jcs_safe(b)}))


# anything a reading, a score or a reason parameter may hold, NaN and infinities included
measures = st.recursive(st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.floats() | wire_text,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(wire_text, inner, max_size=3),
                        max_leaves=8)
aware_times = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)),
                                                      timezone(timedelta(hours=-11, minutes=-30))]))
gate_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)  # the [gate] id rule
person_ids = st.none() | st.from_regex(r"[A-Za-z0-9_.:@-]{1,64}", fullmatch=True)
reasons = st.lists(st.fixed_dictionaries({
    "code": st.sampled_from(get_args(ReasonCode)), "effect": st.none() | st.sampled_from(["deny", "recheck", "allow"]),
    "params": st.dictionaries(wire_text, measures, max_size=3)}), max_size=4)
numbers = st.none() | st.floats() | st.integers(-(2**53 - 1), 2**53 - 1)
temperatures = st.fixed_dictionaries(
    {k: numbers for k in ("body_c", "raw_c", "offset_c", "ambient_c", "ambient_correction_c", "face_width_px",
                          "distance_m", "distance_correction_c", "blackbody_correction_c")}
    | {"source": st.sampled_from(["spot", "array"]), "region_pixels": st.integers(0, 768), "valid": st.booleans(),
       "reason": st.none() | wire_text})
scores = st.fixed_dictionaries({}, optional={k: numbers for k in ("score", "margin", "latency_ms", "face_px")}
                               | {k: st.none() | st.integers(0, 10**6) for k in ("votes", "window", "track_id")}
                               | {"guard": st.none() | wire_text})


@st.composite
def alarm_records(draw: st.DrawFn) -> dict[str, Any]:
    try:
        return AlarmRecord(ts=draw(aware_times), kind=draw(st.text(min_size=1, max_size=64)),
                           severity=draw(st.sampled_from(["info", "warning", "high", "critical"])),
                           message=draw(st.text(max_size=100)), details=draw(st.dictionaries(wire_text, measures,
                                                                                             max_size=3)),
                           gate_id=draw(st.none() | gate_ids), person_id=draw(person_ids)).to_dict()
    except ValueError:
        reject()


@st.composite
def event_records(draw: st.DrawFn) -> EventRecord:
    try:
        return EventRecord(ts=draw(aware_times), gate_id=draw(gate_ids), direction=draw(st.sampled_from(["in", "out"])),
                           decision=draw(st.sampled_from(["grant", "deny"])), person_id=draw(person_ids),
                           reasons=tuple(draw(reasons)), alarms=tuple(draw(st.lists(alarm_records(), max_size=2))),
                           temperature=draw(st.none() | temperatures), scores=draw(st.none() | scores))
    except ValueError:  # a time that has no UTC equivalent (year 1 east of Greenwich)
        reject()


@fuzz_settings(150)
@given(event_records())
def test_every_event_the_gate_queues_is_a_documented_strict_json_event(store: Store, ev: EventRecord) -> None:
    store.record_event(ev, passage=False)
    (row,) = [r for r in store.pending_outbox(10_000) if r.event_id == ev.event_id]
    doc = strict_json(row.payload)
    msg = EventMessage.model_validate(signed(row.payload))
    assert msg.event_id == ev.event_id and msg.ts == ev.ts and msg.gate_id == ev.gate_id
    assert (msg.direction, msg.decision, msg.person_id) == (ev.direction, ev.decision, ev.person_id)
    assert _same_json(msg.model_dump(mode="json", by_alias=True, exclude_unset=True,
                                     exclude={"ts", "signature", "alarms"}),
                      {k: v for k, v in doc.items() if k not in ("ts", "alarms")})
    assert [a.id for a in msg.alarms] == [a["id"] for a in doc["alarms"]]
    assert _same_json(doc["reasons"], list(ev.reasons)) and _same_json(doc["temperature"], ev.temperature)
    store.ack_outbox([row.seq])


@fuzz_settings(100)
@given(aware_times, st.text(min_size=1, max_size=64), st.sampled_from(["info", "warning", "high", "critical"]),
       st.text(max_size=1000), st.dictionaries(wire_text, measures, max_size=4), st.none() | gate_ids, person_ids)
def test_every_alarm_the_gate_queues_is_a_documented_strict_json_alarm(
        store: Store, ts: datetime, kind: str, severity: str, message: str, details: dict[str, Any],
        gate_id: str | None, person_id: str | None) -> None:
    try:
        alarm = AlarmRecord(ts=ts, kind=kind, severity=severity, message=message, details=details, gate_id=gate_id,
                            person_id=person_id)
    except ValueError:
        reject()
    store.record_alarm(alarm)
    (row,) = [r for r in store.pending_outbox(10_000) if r.event_id == alarm.id]
    strict_json(row.payload)
    msg = AlarmMessage.model_validate(signed(row.payload))
    assert (msg.id, msg.ts, msg.kind, msg.severity, msg.message) == (alarm.id, alarm.ts, kind, severity, message)
    assert _same_json(msg.details, alarm.details)
    store.ack_outbox([row.seq])
    store.acknowledge_alarm(alarm.id, "fuzz")  # closed: the next example is a new alarm, not a repeat of this one


# ------------------------------------------------------------------------------ MqttSync (never started)


class Collected:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def sync(store: Store) -> tuple[MqttSync, Collected]:
    got = Collected()
    return MqttSync(MqttConfig(), store, gate_id=GATE, community=COMMUNITY, state=lambda: got.state,
                    on_peer_event=got.events.append), got


@fuzz_settings(150)
@given(st.dictionaries(wire_text, json_values(8), max_size=6),
       st.dictionaries(wire_text, st.datetimes() | st.builds(Path, wire_text), max_size=2))
def test_state_document_is_always_a_signed_documented_state(sync: tuple[MqttSync, Collected],
                                                           health: dict[str, Any], odd: dict[str, Any]) -> None:
    """Whatever the gate's parts report, the retained state is strict JSON, closed edge-gate/state/2 and
    signed by the gate's key (parts the protocol does not document are left out, never sent)."""
    client, got = sync
    got.state = {**{f"odd:{k}": v for k, v in odd.items()}, **health}
    payload = client._state_payload()
    doc = strict_json(payload)
    msg = StateMessage.model_validate_json(payload)
    assert verify(doc, [client.key.public]) == client.key.key_id
    assert msg.gate == GATE and doc["sync"]["connected"] is False and doc["ts"].endswith("Z")


def test_state_document_carries_the_documented_health(sync: tuple[MqttSync, Collected]) -> None:
    client, got = sync
    got.state = {"uptime_s": 12.5, "whitelist": {"version": 23, "persons": 2, "templates": 3, "model": MODEL,
                                                 "need_snapshot": False, "member_gates": 2},
                 "health": {"camera": {"ok": True, "detail": "ok"}}, "outbox_depth": 4}
    doc = json.loads(client._state_payload())
    StateMessage.model_validate(doc)
    assert doc["whitelist"]["version"] == 23 and doc["health"]["camera"]["ok"] is True and doc["uptime_s"] == 12.5


def _topic(gate: str) -> str:
    return f"{PREFIX}/{COMMUNITY}/{gate}/events"


valid_event_docs = event_records().map(lambda ev: {"schema": EVENT_SCHEMA, **ev.to_dict()})


@fuzz_settings(200)
@given(st.binary(max_size=300) | json_objects().map(lambda d: json.dumps(d).encode())
       | valid_event_docs.map(lambda d: json.dumps(d).encode()),
       gate_ids | st.sampled_from(["", "+", "a/b"]))
def test_peer_event_intake_never_raises_and_keeps_only_well_formed_events(
        sync: tuple[MqttSync, Collected], payload: bytes, gate: str) -> None:
    client, got = sync
    got.events.clear()
    client._peer_event(_topic(gate), payload)
    for ev in got.events:
        msg = EventMessage.model_validate(ev)  # what reaches the gate is a documented event again
        assert msg.gate_id == gate
        assert msg == EventMessage.model_validate_json(payload)


@fuzz_settings(150)
@given(valid_event_docs, gate_ids)
def test_a_peer_event_is_taken_only_from_its_own_gates_topic(sync: tuple[MqttSync, Collected],
                                                             doc: dict[str, Any], other: str) -> None:
    client, got = sync
    got.events.clear()
    peer = SigningKey.generate()
    client.intake.members.replace([(doc["gate_id"], peer.public_text)])
    sent = signed(jcs_safe(doc), peer)
    payload = json.dumps(sent, ensure_ascii=False).encode()
    future = datetime.fromisoformat(doc["ts"].replace("Z", "+00:00")) > datetime.now(UTC) + timedelta(minutes=2)
    client._peer_event(_topic(other), payload)
    assert len(got.events) == int(other == doc["gate_id"] and not future)
    if future:  # beyond the clock-skew allowance: refused from its own topic too
        client._peer_event(_topic(doc["gate_id"]), payload)
        assert len(got.events) == 0
        return
    client._peer_event(_topic(doc["gate_id"]), payload)
    assert _same_json(got.events[-1], EventMessage.model_validate(sent).model_dump(mode="json", by_alias=True))


@fuzz_settings(150)
@given(st.binary(max_size=200) | json_values(8).map(lambda v: json.dumps(v).encode())
       | st.builds(lambda v, t: json.dumps({"schema": CURRENT_SCHEMA, "version": v,
                                            "issued_at": t}).encode(),
                   st.integers(-3, 2**64) | st.floats() | wire_text, st.none() | wire_text | st.integers()))
def test_whitelist_current_pointer_is_answered_by_a_documented_ack_or_nothing(store: Store, raw: bytes) -> None:
    wl = WhitelistApplier(store, None, MODEL, [], community=COMMUNITY, gate_id=GATE)
    ack = wl.handle_current(raw)
    if ack is None:
        current = WhitelistCurrent.model_validate_json(raw)
        assert current.version <= wl.version
        return
    doc = WhitelistAck.model_validate(signed(ack))
    assert doc.status in ("rejected", "outdated")
    if doc.status == "outdated":
        assert doc.need_snapshot and doc.version == WhitelistCurrent.model_validate_json(raw).version > wl.version
    else:
        with pytest.raises(ValidationError):
            WhitelistCurrent.model_validate_json(raw)
