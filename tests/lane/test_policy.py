"""The access policy: one test per rule, combinations, and properties that must hold for any input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.policy import (
    Decision,
    Identity,
    PolicyConfig,
    TemperatureInput,
    decide,
    manual_open_decision,
)
from edge.records import Passage, PersonRecord

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday 10:00 in Prague
CFG = PolicyConfig(direction="in", timezone="Europe/Prague")
GATE = "north"
ANN = PersonRecord(id="ann", name="Ann", unit="A1", updated_at=NOW - timedelta(days=30))
KNOWN = Identity("ann", score=0.71, margin=0.3, votes=3, window=5, track_id=7)
UNKNOWN = Identity(None, score=0.2, margin=0.01, votes=0, window=5, track_id=8)
NORMAL = TemperatureInput(36.6, age_s=0.4, confirmed=True)


def run(cfg: PolicyConfig = CFG, identity: Identity = KNOWN, person: PersonRecord | None = ANN,
        temperature: TemperatureInput | None = NORMAL, liveness: bool | None = True, now: datetime = NOW,
        passages: tuple[Passage, ...] = (), last_stranger_alarm: datetime | None = None) -> Decision:
    return decide(cfg, gate_id=GATE, identity=identity, person=person, temperature=temperature, liveness=liveness,
                  now=now, passages=passages, last_stranger_alarm=last_stranger_alarm)


def test_active_resident_with_normal_temperature_is_granted() -> None:
    d = run()
    assert d.outcome == "grant" and d.granted and d.codes == ("ok",) and d.alarms == ()


def sched(**days: Any) -> Any:
    return days  # a schedule as JSON: PersonRecord parses it


# (person changes, config changes, expected deny code, expected alarm kinds)
PERSON_RULES = [
    ({"status": "suspended"}, {}, "suspended", []),
    ({"status": "blocked"}, {}, "blocked", ["blocked_person"]),
    ({"valid_from": NOW + timedelta(hours=1)}, {}, "not_yet_valid", []),
    ({"valid_until": NOW}, {}, "expired", []),
    ({"kind": "visitor", "max_uses": 2, "uses": 2}, {}, "uses_exhausted", []),
    ({"allowed_gates": ("south",)}, {}, "gate_not_allowed", []),
    ({"directions": ("out",)}, {}, "direction_not_allowed", []),
    ({"schedule": sched(mon=[["11:00", "12:00"]])}, {}, "outside_schedule", []),  # 10:00 local
    ({"schedule": sched(mon=[["09:30", "10:30"]])}, {"timezone": "UTC"}, "outside_schedule", []),  # 09:00 UTC
]


@pytest.mark.parametrize("changes, cfg_changes, code, alarm_kinds", PERSON_RULES,
                         ids=[r[2] + str(i) for i, r in enumerate(PERSON_RULES)])
def test_each_person_rule_denies_with_its_code(changes: dict[str, Any], cfg_changes: dict[str, Any],
                                               code: str, alarm_kinds: list[str]) -> None:
    d = run(cfg=CFG.model_copy(update=cfg_changes), person=replace(ANN, **changes))
    assert d.outcome == "deny" and d.codes == (code,)
    assert [a.kind for a in d.alarms] == alarm_kinds
    assert all(r.effect == "deny" for r in d.reasons)


@pytest.mark.parametrize("changes", [
    {"valid_from": NOW, "valid_until": NOW + timedelta(seconds=1)},
    {"kind": "visitor", "max_uses": 2, "uses": 1},
    {"allowed_gates": ("south", "north"), "directions": ("in",)},
    {"schedule": sched(mon=[["09:59", "10:01"]])},
    {"schedule": sched(sun=[["22:00", "10:30"]])},  # Sunday night window running into Monday morning
])
def test_person_within_their_limits_is_granted(changes: dict[str, Any]) -> None:
    assert run(person=replace(ANN, **changes)).outcome == "grant"


def test_unknown_face_is_denied_with_a_stranger_alarm_throttled_per_track() -> None:
    d = run(identity=UNKNOWN, person=None)
    assert d.outcome == "deny" and d.codes == ("unknown_face",)
    assert [(a.kind, a.severity) for a in d.alarms] == [("stranger", "warning")]
    assert d.reasons[0].params["score"] == 0.2 and d.alarms[0].params["track_id"] == 8
    again = run(identity=UNKNOWN, person=None, last_stranger_alarm=NOW - timedelta(seconds=10))
    assert again.codes == ("unknown_face",) and again.alarms == ()
    later = run(identity=UNKNOWN, person=None, last_stranger_alarm=NOW - timedelta(seconds=30))
    assert [a.kind for a in later.alarms] == ["stranger"]


def test_identity_without_a_record_or_a_mismatched_record_is_denied() -> None:
    assert run(person=None).codes == ("not_enrolled",)
    assert run(person=replace(ANN, id="bob")).codes == ("invalid_input",)


def test_confirmed_fever_denies_and_alarms_an_unconfirmed_one_asks_for_a_recheck() -> None:
    fever = TemperatureInput(38.2, age_s=0.5, confirmed=True)
    d = run(temperature=fever)
    assert d.outcome == "deny" and d.codes == ("fever",)
    assert [(a.kind, a.severity) for a in d.alarms] == [("fever", "high")]
    assert d.alarms[0].params["person_id"] == "ann" and d.reasons[0].params["value_c"] == 38.2
    first = run(temperature=replace(fever, confirmed=False))
    assert first.outcome == "recheck" and first.codes == ("fever_unconfirmed",) and first.alarms == ()
    no_confirm = CFG.model_copy(update={"require_confirmation": False})
    assert run(cfg=no_confirm, temperature=replace(fever, confirmed=False)).codes == ("fever",)
    assert run(temperature=TemperatureInput(37.3, 0.5, True)).codes == ("fever",)  # threshold inclusive
    assert run(temperature=TemperatureInput(37.29, 0.5, True)).outcome == "grant"


@pytest.mark.parametrize("temperature, code, fault", [
    (None, "sensor_fault", "no_reading"),
    (TemperatureInput(36.6, 0.1, fault="serial_timeout"), "sensor_fault", "serial_timeout"),
    (TemperatureInput(None, 0.1), "sensor_fault", "no_value"),
    (TemperatureInput(float("nan"), 0.1), "sensor_fault", "invalid_value"),
    (TemperatureInput(36.6, 3.5), "stale_temperature", None),
    (TemperatureInput(39.0, 60.0, confirmed=True), "stale_temperature", None),
    (TemperatureInput(36.6, -1.0), "stale_temperature", None),
])
def test_sensor_fault_or_stale_reading_follows_the_configured_policy(temperature: TemperatureInput | None,
                                                                     code: str, fault: str | None) -> None:
    denied = run(temperature=temperature)
    assert denied.outcome == "deny" and denied.codes == (code,)
    assert [a.kind for a in denied.alarms] == ["sensor_fault"]
    if fault:
        assert denied.reasons[0].params["fault"] == fault
    lenient = CFG.model_copy(update={"sensor_fault_policy": "allow_and_alarm"})
    allowed = run(cfg=lenient, temperature=temperature)
    assert allowed.outcome == "grant" and allowed.codes == (code,) and allowed.reasons[0].effect == "allow"
    assert [a.kind for a in allowed.alarms] == ["sensor_fault"]


def test_no_screening_ignores_temperature() -> None:
    off = CFG.model_copy(update={"temperature_screening": False})
    assert run(cfg=off, temperature=None).outcome == "grant"
    assert run(cfg=off, temperature=TemperatureInput(39.0, 0.1, True)).outcome == "grant"


def test_anti_passback_same_direction_within_the_window() -> None:
    recent = Passage("ann", NOW - timedelta(seconds=20), "south", "in")
    d = run(passages=(recent,))
    assert d.codes == ("anti_passback",) and d.reasons[0].params["gate_id"] == "south"
    assert run(passages=(replace(recent, direction="out"),)).outcome == "grant"
    assert run(passages=(replace(recent, ts=NOW - timedelta(seconds=61)),)).outcome == "grant"
    assert run(passages=(replace(recent, person_id="bob"),)).outcome == "grant"
    assert run(cfg=CFG.model_copy(update={"anti_passback_s": 0}), passages=(recent,)).outcome == "grant"
    skewed_peer = replace(recent, ts=NOW + timedelta(seconds=5))
    assert run(passages=(skewed_peer,)).codes == ("anti_passback",)


def test_liveness_only_when_required() -> None:
    assert run(liveness=False).outcome == "grant"
    strict = CFG.model_copy(update={"require_liveness": True})
    d = run(cfg=strict, liveness=False)
    assert d.codes == ("spoof_suspected",) and [(a.kind, a.severity) for a in d.alarms] == [("spoof", "high")]
    assert run(cfg=strict, liveness=None).codes == ("liveness_unavailable",)
    lenient = strict.model_copy(update={"sensor_fault_policy": "allow_and_alarm"})
    assert run(cfg=lenient, liveness=None).outcome == "grant"
    assert run(cfg=lenient, liveness=False).outcome == "deny"  # a spoof is never waved through


def test_all_reasons_are_collected_not_only_the_first() -> None:
    bad = replace(ANN, status="blocked", valid_until=NOW - timedelta(days=1), allowed_gates=("south",),
                  directions=("out",), schedule=sched(tue=[["07:00", "08:00"]]))
    strict = CFG.model_copy(update={"require_liveness": True})
    d = run(cfg=strict, person=bad, liveness=False, temperature=TemperatureInput(38.5, 0.2, True),
            passages=(Passage("ann", NOW - timedelta(seconds=5), "north", "in"),))
    assert d.outcome == "deny"
    assert d.codes == ("blocked", "expired", "gate_not_allowed", "direction_not_allowed", "outside_schedule",
                       "anti_passback", "spoof_suspected", "fever")
    assert [a.kind for a in d.alarms] == ["blocked_person", "spoof", "fever"]


def test_stranger_with_a_high_first_reading_is_denied_and_the_reading_is_noted() -> None:
    d = run(identity=UNKNOWN, person=None, temperature=TemperatureInput(38.0, 0.2, confirmed=False))
    assert d.outcome == "deny" and d.codes == ("unknown_face", "fever_unconfirmed")


def test_recheck_loses_to_any_denial() -> None:
    d = run(person=replace(ANN, status="suspended"), temperature=TemperatureInput(38.0, 0.2))
    assert d.outcome == "deny" and d.codes == ("suspended", "fever_unconfirmed")


def test_reasons_and_alarms_serialise_for_the_store() -> None:
    d = run(identity=UNKNOWN, person=None)
    assert d.reasons[0].as_dict() == {"code": "unknown_face", "effect": "deny",
                                      "params": {"score": 0.2, "margin": 0.01, "votes": 0, "window": 5,
                                                 "track_id": 8}}
    assert d.alarms[0].as_dict()["kind"] == "stranger"


def test_bad_inputs_deny_instead_of_crashing() -> None:
    assert run(now=datetime(2025, 3, 3, 9, 0)).codes == ("invalid_input",)
    weird = Identity(None, score=float("nan"), margin=float("inf"), votes=0, window=0, track_id=1)
    d = run(identity=weird, person=None, last_stranger_alarm=datetime(2025, 1, 1))  # naive: ignored
    assert d.outcome == "deny" and d.reasons[0].params["score"] is None and len(d.alarms) == 1


def test_config_forbids_unknown_keys_and_checks_values() -> None:
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate({"fever": 38})
    with pytest.raises(ValidationError, match="unknown time zone"):
        PolicyConfig(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        PolicyConfig(sensor_fault_policy="ignore")
    assert all(f.description for f in PolicyConfig.model_fields.values())
    assert PolicyConfig().fever_c == 37.3 and PolicyConfig().sensor_fault_policy == "deny"


def test_manual_open() -> None:
    d = manual_open_decision("guard-ann", "  parcel delivery  ", NOW)
    assert d.outcome == "grant" and d.codes == ("manual_open",)
    assert d.reasons[0].params == {"guard": "guard-ann", "reason": "parcel delivery",
                                   "at": "2025-03-03T09:00:00.000000Z"}
    assert manual_open_decision("", "x", NOW).outcome == "deny"
    assert manual_open_decision("g", "x", datetime(2025, 1, 1)).outcome == "deny"
    assert len(manual_open_decision("g", "x" * 2000, NOW).reasons[0].params["reason"]) == 500


# ---------------------------------------------------------------------------------------- properties

temps = st.one_of(st.none(), st.builds(
    TemperatureInput,
    value_c=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    age_s=st.one_of(st.floats(min_value=-5, max_value=100), st.just(float("nan"))),
    confirmed=st.booleans(), fault=st.one_of(st.none(), st.just("timeout"))))
persons = st.builds(
    PersonRecord, id=st.just("ann"), name=st.just("Ann"),
    kind=st.sampled_from(["resident", "visitor", "staff"]),
    status=st.sampled_from(["active", "suspended", "blocked"]),
    valid_from=st.one_of(st.none(), st.just(NOW - timedelta(days=1)), st.just(NOW + timedelta(days=1))),
    max_uses=st.one_of(st.none(), st.integers(0, 3)), uses=st.integers(0, 3),
    allowed_gates=st.sampled_from([(), ("north",), ("south",)]),
    directions=st.sampled_from([(), ("in",), ("out",)]))
configs = st.builds(
    PolicyConfig, sensor_fault_policy=st.sampled_from(["deny", "allow_and_alarm"]),
    require_confirmation=st.booleans(), require_liveness=st.booleans(), temperature_screening=st.booleans())
scores = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(cfg=configs, temperature=temps, liveness=st.one_of(st.none(), st.booleans()),
       p=st.one_of(st.none(), persons), score=scores)
def test_never_grant_an_unknown_face(cfg: PolicyConfig, temperature: TemperatureInput | None,
                                     liveness: bool | None, p: PersonRecord | None, score: float) -> None:
    identity = Identity(None, score=score, margin=score, votes=5, window=5, track_id=1)
    d = run(cfg=cfg, identity=identity, person=p, temperature=temperature, liveness=liveness)
    assert d.outcome == "deny"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(cfg=configs, p=persons, value=st.floats(37.3, 45), age=st.floats(0, 3),
       liveness=st.one_of(st.none(), st.booleans()))
def test_never_grant_with_a_confirmed_fresh_fever(cfg: PolicyConfig, p: PersonRecord, value: float,
                                                  age: float, liveness: bool | None) -> None:
    cfg = cfg.model_copy(update={"temperature_screening": True})
    d = run(cfg=cfg, person=p, temperature=TemperatureInput(value, age, confirmed=True), liveness=liveness)
    assert d.outcome == "deny" and "fever" in d.codes


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(cfg=configs, p=persons, temperature=temps, liveness=st.one_of(st.none(), st.booleans()))
def test_never_grant_a_non_active_person_and_every_deny_says_why(
        cfg: PolicyConfig, p: PersonRecord, temperature: TemperatureInput | None,
        liveness: bool | None) -> None:
    d = run(cfg=cfg, person=p, temperature=temperature, liveness=liveness)
    if p.status != "active":
        assert d.outcome == "deny" and p.status in d.codes
    if d.outcome == "deny":
        assert any(r.effect == "deny" for r in d.reasons)
    if d.outcome == "grant":
        assert all(r.effect == "allow" for r in d.reasons)
