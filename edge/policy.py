"""The access policy: a pure function from what the gate knows (identity, temperature, liveness, the
person's record, recent passages, the time) to a Decision with every reason and alarm.

No I/O and no clock reads: `now` is an input, so every rule is unit-testable. Every rule is evaluated
and every reason collected, so guards see all of what was wrong, not only the first thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from edge.config.policy import PolicyConfig
from edge.records import Passage, PersonRecord, ts_text

Outcome = Literal["grant", "deny", "recheck"]
Effect = Literal["deny", "recheck", "allow"]
Severity = Literal["info", "warning", "high", "critical"]


@dataclass(frozen=True)
class Identity:
    """Who the vision loop says this is: `person_id` None when the face stays unknown."""

    person_id: str | None
    score: float
    margin: float
    votes: int  # agreeing recognitions ...
    window: int  # ... of this many
    track_id: int


@dataclass(frozen=True)
class TemperatureInput:
    """The body temperature estimate for this face; `fault` names a sensor problem (value ignored)."""

    value_c: float | None
    age_s: float
    confirmed: bool = False  # a second reading agreed
    fault: str | None = None


@dataclass(frozen=True)
class Reason:
    code: str
    effect: Effect
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "effect": self.effect, "params": dict(self.params)}


@dataclass(frozen=True)
class Alarm:
    kind: str
    severity: Severity
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "message": self.message,
                "params": dict(self.params)}


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    alarms: tuple[Alarm, ...] = ()

    @property
    def granted(self) -> bool:
        return self.outcome == "grant"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)


def _finish(reasons: list[Reason], alarms: list[Alarm]) -> Decision:
    effects = {r.effect for r in reasons}
    outcome: Outcome = "deny" if "deny" in effects else "recheck" if "recheck" in effects else "grant"
    if not reasons:
        reasons = [Reason("ok", "allow")]
    return Decision(outcome, tuple(reasons), tuple(alarms))


def _aware(dt: object) -> bool:
    return isinstance(dt, datetime) and dt.tzinfo is not None and dt.utcoffset() is not None


def _num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def decide(cfg: PolicyConfig, *, gate_id: str, identity: Identity, person: PersonRecord | None,
           temperature: TemperatureInput | None, liveness: bool | None, now: datetime,
           passages: Iterable[Passage] = (), last_stranger_alarm: datetime | None = None) -> Decision:
    """Decide one face at gate `gate_id`. `passages`: the person's recent passages at any gate;
    `last_stranger_alarm`: when this track last raised the stranger alarm."""
    if not _aware(now):
        return _finish([Reason("invalid_input", "deny", {"what": "now must be timezone-aware"})], [])
    reasons: list[Reason] = []
    alarms: list[Alarm] = []
    deny = reasons.append  # every reason added in this function refuses entry
    scores = {"score": identity.score if _num(identity.score) else None,
              "margin": identity.margin if _num(identity.margin) else None,
              "votes": identity.votes, "window": identity.window, "track_id": identity.track_id}

    if identity.person_id is None:
        deny(Reason("unknown_face", "deny", scores))
        last = last_stranger_alarm if _aware(last_stranger_alarm) else None
        if last is None or (now - last).total_seconds() >= cfg.stranger_alarm_every_s:
            alarms.append(Alarm("stranger", "warning", f"unknown face at {gate_id}", scores))
    elif person is None:
        deny(Reason("not_enrolled", "deny", {"person_id": identity.person_id}))
    elif person.id != identity.person_id:
        deny(Reason("invalid_input", "deny", {"what": "person record does not match the identity"}))
    else:
        _person_rules(cfg, gate_id, person, now, passages, reasons, alarms)

    if cfg.require_liveness:
        if liveness is False:
            deny(Reason("spoof_suspected", "deny"))
            alarms.append(Alarm("spoof", "high", f"face at {gate_id} is not live (photo or screen?)",
                                {**scores, "person_id": identity.person_id}))
        elif liveness is None:
            _fault(cfg, gate_id, "liveness_unavailable", {}, reasons, alarms)

    if cfg.temperature_screening:
        _temperature_rules(cfg, gate_id, temperature, identity.person_id, reasons, alarms)
    return _finish(reasons, alarms)


def _person_rules(cfg: PolicyConfig, gate_id: str, p: PersonRecord, now: datetime, passages: Iterable[Passage],
                  reasons: list[Reason], alarms: list[Alarm]) -> None:
    deny = reasons.append
    if p.status == "suspended":
        deny(Reason("suspended", "deny", {"person_id": p.id}))
    elif p.status == "blocked":
        deny(Reason("blocked", "deny", {"person_id": p.id}))
        alarms.append(Alarm("blocked_person", "high", f"blocked person {p.name} ({p.id}) at {gate_id}",
                            {"person_id": p.id, "unit": p.unit}))
    elif p.status != "active":
        deny(Reason("invalid_input", "deny", {"what": f"unknown status {p.status!r}"}))
    if p.valid_from is not None and now < p.valid_from:
        deny(Reason("not_yet_valid", "deny", {"valid_from": ts_text(p.valid_from)}))
    if p.valid_until is not None and now >= p.valid_until:
        deny(Reason("expired", "deny", {"valid_until": ts_text(p.valid_until)}))
    if p.max_uses is not None and p.uses >= p.max_uses:
        deny(Reason("uses_exhausted", "deny", {"uses": p.uses, "max_uses": p.max_uses}))
    if p.allowed_gates and gate_id not in p.allowed_gates:
        deny(Reason("gate_not_allowed", "deny", {"gate_id": gate_id, "allowed": list(p.allowed_gates)}))
    if p.directions and cfg.direction not in p.directions:
        deny(Reason("direction_not_allowed", "deny", {"direction": cfg.direction,
                                                      "allowed": list(p.directions)}))
    if p.schedule is not None:
        local = now.astimezone(ZoneInfo(cfg.timezone))
        if not p.schedule.allows(local):
            deny(Reason("outside_schedule", "deny", {"local_time": local.strftime("%a %H:%M"),
                                                     "timezone": cfg.timezone,
                                                     "schedule": p.schedule.to_json()}))
    if cfg.anti_passback_s > 0:
        window = timedelta(seconds=cfg.anti_passback_s)
        recent = [x for x in passages if x.person_id == p.id and x.direction == cfg.direction
                  and _aware(x.ts) and abs(now - x.ts) < window]
        if recent:
            last = max(recent, key=lambda x: x.ts)
            deny(Reason("anti_passback", "deny", {"last_passage": ts_text(last.ts), "gate_id": last.gate_id,
                                                  "direction": last.direction,
                                                  "window_s": cfg.anti_passback_s}))


def _fault(cfg: PolicyConfig, gate_id: str, code: str, params: Mapping[str, Any], reasons: list[Reason],
           alarms: list[Alarm]) -> None:
    effect: Effect = "deny" if cfg.sensor_fault_policy == "deny" else "allow"
    reasons.append(Reason(code, effect, {**params, "policy": cfg.sensor_fault_policy}))
    alarms.append(Alarm("sensor_fault", "warning", f"{code.replace('_', ' ')} at {gate_id}",
                        {**params, "code": code}))


def _temperature_rules(cfg: PolicyConfig, gate_id: str, t: TemperatureInput | None, person_id: str | None,
                       reasons: list[Reason], alarms: list[Alarm]) -> None:
    if t is None:
        _fault(cfg, gate_id, "sensor_fault", {"fault": "no_reading"}, reasons, alarms)
        return
    if t.fault is not None:
        _fault(cfg, gate_id, "sensor_fault", {"fault": str(t.fault)}, reasons, alarms)
        return
    if t.value_c is None or not _num(t.value_c):
        _fault(cfg, gate_id, "sensor_fault", {"fault": "no_value" if t.value_c is None else "invalid_value"},
               reasons, alarms)
        return
    if not _num(t.age_s) or t.age_s < 0 or t.age_s > cfg.max_temperature_age_s:
        age = t.age_s if _num(t.age_s) else None
        _fault(cfg, gate_id, "stale_temperature", {"age_s": age, "max_age_s": cfg.max_temperature_age_s},
               reasons, alarms)
        return
    value = round(float(t.value_c), 2)
    if t.value_c >= cfg.fever_c:
        params = {"value_c": value, "fever_c": cfg.fever_c, "confirmed": bool(t.confirmed)}
        if t.confirmed or not cfg.require_confirmation:
            reasons.append(Reason("fever", "deny", params))
            alarms.append(Alarm("fever", "high", f"fever {value} C at {gate_id}",
                                {**params, "person_id": person_id}))
        else:
            reasons.append(Reason("fever_unconfirmed", "recheck", params))


def manual_open_decision(guard: str, reason: str, now: datetime) -> Decision:
    """A guard opening the gate by hand: granted, with who, why and when as the reason."""
    if not isinstance(guard, str) or not guard.strip() or not _aware(now):
        what = "manual open needs a guard and an aware time"
        return _finish([Reason("invalid_input", "deny", {"what": what})], [])
    text = reason.strip()[:500] if isinstance(reason, str) else ""
    return _finish([Reason("manual_open", "allow", {"guard": guard.strip(), "reason": text,
                                                    "at": ts_text(now)})], [])
