"""`LaneSafety`: the gate's side of the lane's life-safety I/O: the alarms of the fire input, the exit
button's events, the siren and hold-open (a guard's, from the page, and the normally-open schedule).

The fire hold itself and the exit button's pulse are the relay driver's (`drivers.relay.worker`): they
act within a poll of the input, whatever the gate's threads are doing. Here, once a second from the
supervisor: the fire input's state (as the driver debounced it) raises `fire_release` (critical) and
`fire_release_recovered` when it ends; a cut supervised line `fire_line_fault` / `fire_line_recovered`;
each exit-button press is an event (grant, direction `out`, reason `exit_button`) expected to pass the
turnstile. The siren sounds `siren_s` for every alarm of the kinds in `[lane] siren_alarms` (the fire
kinds always). A hold-open is the relay held on for a reason `hold_open`: a guard's (an operator, with
a reason, audited, at most `hold_open_max_minutes`, ended at its time or by "release now") or the
`[lane] hold_open_schedule`'s windows; a fire holds the relay whatever a hold-open does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from drivers.relay import InputEvent, Relay
from edge.config.lane import SIREN_ALWAYS, LaneConfig
from edge.lane import Lane
from edge.records import AlarmRecord, EventRecord, JsonDict, ts_text
from edge.store.writer import StoreWriter

if TYPE_CHECKING:
    from edge.gate import Gate

log = logging.getLogger(__name__)
HOLD = "hold_open"  # the relay's hold reason
PASS_GRACE_S = 2.0  # a PASS this soon after a hold ended is still one of the held turnstile's


@dataclass(frozen=True)
class HoldOpen:
    """A guard's hold-open: who, why, until when (UTC)."""

    guard: str
    reason: str
    since: datetime
    until: datetime


class LaneSafety:
    def __init__(self, cfg: LaneConfig, relay: Relay, lane: Lane, writer: StoreWriter, *, gate_id: str,
                 timezone: str, record_alarm: Callable[[AlarmRecord], None],
                 publish: Callable[[str, dict[str, object]], None]) -> None:
        self.cfg, self.relay, self.lane, self.writer, self.gate_id = cfg, relay, lane, writer, gate_id
        self.tz = ZoneInfo(timezone)
        self.schedule = cfg.open_schedule()
        self._record_alarm, self._publish = record_alarm, publish
        self._lock = threading.Lock()
        self._fire = self._trouble = False
        self.held: HoldOpen | None = None
        self.scheduled = False
        self.exits = 0
        self._held_t: float | None = None  # time.monotonic() the relay was last seen held

    @classmethod
    def attach(cls, gate: Gate, publish: Callable[[str, dict[str, object]], None]) -> LaneSafety:
        """The gate's lane safety, listening to the alarms the gate publishes (for the siren)."""
        safety = cls(gate.cfg.lane, gate.relay, gate.lane, gate.writer, gate_id=gate.cfg.gate.id,
                     timezone=gate.policy.timezone, record_alarm=gate.record_alarm, publish=publish)
        gate.subscribe(safety.on_published)
        return safety

    def actions(self) -> dict[str, Any]:
        """The page's hold-open actions (`edge.web.ports.GateActions` fields)."""
        return {"hold_open": self.hold_open, "release_hold": self.release, "lane_io": self.snapshot}

    # -- the supervisor's pass ---------------------------------------------------------------------
    def check(self, events: list[InputEvent], now: datetime | None = None) -> list[InputEvent]:
        """One pass (the supervisor's, once a second): fire alarms, exit-button events, the hold-open's end
        and schedule. Returns `events` for the lane's PASS and door handling, without the PASS edges of
        a turnstile held released (people walking out of a fire, or through a hold-open, are no tailgaters)."""
        now = now or datetime.now(UTC)
        if self.relay.holds:
            self._held_t = time.monotonic()
        self._watch_fire()
        for ev in events:
            if ev.name == "exit" and ev.active:
                self._exit(now)
        self._hold_check(now)
        if self.relay.holds:
            self._held_t = time.monotonic()
        held_t = self._held_t
        if held_t is None:
            return events
        return [e for e in events if not (e.name == "pass" and e.t <= held_t + PASS_GRACE_S)]

    def _watch_fire(self) -> None:
        fire = self.relay.input_state("fire") is True
        trouble = self.relay.input_state("fire_trouble") is True
        if trouble != self._trouble:
            self._trouble = trouble
            if trouble:
                self._alarm("fire_line_fault", "critical", "the supervised fire line is cut or shorted: treated "
                            "as a fire, the turnstile is held released")
            else:
                self._alarm("fire_line_recovered", "info", "the supervised fire line is sound again")
        if fire != self._fire:
            self._fire = fire
            if fire:
                self._alarm("fire_release", "critical", "fire input active: the turnstile is held released")
            else:
                self._alarm("fire_release_recovered", "info", "fire input inactive: the turnstile is locked "
                            "again")

    def _alarm(self, kind: str, severity: str, message: str) -> None:
        log.warning("alarm %s: %s", kind, message)
        self._record_alarm(AlarmRecord(ts=datetime.now(UTC), kind=kind, severity=severity,
                                       message=f"{message} at {self.gate_id}", gate_id=self.gate_id))

    def _exit(self, now: datetime) -> None:
        """The driver pulsed the relay for the press; the press is an event like any other grant."""
        event = EventRecord(ts=now, gate_id=self.gate_id, direction="out", decision="grant",
                            reasons=({"code": "exit_button", "effect": "allow", "params": {}},))
        self.exits += 1
        self.lane.expect_passage(event)  # the person going out is no tailgater
        self.writer.submit_kept(self.writer.store.record_event, event, passage=False)
        self._publish("decision", {**event.to_dict(), "name": None, "latency_ms": None})
        log.info("exit button: turnstile released (event %s)", event.event_id)

    # -- siren -------------------------------------------------------------------------------------
    def on_published(self, kind: str, payload: dict[str, object]) -> None:
        """Every alarm the gate publishes (any thread): the siren for the configured kinds."""
        alarm = payload.get("kind") if kind == "alarm" else None
        if (alarm in self.cfg.siren_alarms or alarm in SIREN_ALWAYS) and self.relay.siren(self.cfg.siren_s):
            log.info("siren on for %g s: %s", self.cfg.siren_s, alarm)

    # -- hold-open ---------------------------------------------------------------------------------
    def hold_open(self, guard: str, reason: str, minutes: int) -> HoldOpen:
        """A guard holds the turnstile released for `minutes` (ValueError: no reason, out of range)."""
        text = reason.strip() if isinstance(reason, str) else ""
        if not text:
            raise ValueError("a reason is required to hold the gate open")
        if isinstance(minutes, bool) or not isinstance(minutes, int) \
                or not 1 <= minutes <= self.cfg.hold_open_max_minutes:
            raise ValueError(f"hold-open minutes must be 1..{self.cfg.hold_open_max_minutes} ([lane] "
                             "hold_open_max_minutes)")
        now = datetime.now(UTC)
        held = HoldOpen(guard, text[:500], now, now + timedelta(minutes=minutes))
        with self._lock:
            self.held = held
            self.relay.hold(HOLD, True)
        self._audit(guard, "hold_open", {"reason": held.reason, "minutes": minutes, "until": ts_text(held.until)})
        log.warning("hold-open by %s until %s: %s", guard, ts_text(held.until), held.reason)
        return held

    def release(self, guard: str) -> bool:
        """A guard ends the hold-open now ("release now"); False if none was on."""
        with self._lock:
            held, self.held = self.held, None
            self._apply()
        if held is None:
            return False
        self._audit(guard, "hold_open_released", {"reason": held.reason, "until": ts_text(held.until)})
        log.info("hold-open released by %s", guard)
        return True

    def _hold_check(self, now: datetime) -> None:
        scheduled = self.schedule is not None and self.schedule.allows(now.astimezone(self.tz))
        with self._lock:
            ended = self.held if self.held is not None and now >= self.held.until else None
            if ended is not None:
                self.held = None
            changed = scheduled != self.scheduled
            self.scheduled = scheduled
            self._apply()
        if ended is not None:
            self._audit("gate", "hold_open_ended", {"guard": ended.guard, "reason": ended.reason,
                                                    "until": ts_text(ended.until)})
            log.info("hold-open by %s ended at its time", ended.guard)
        if changed:
            log.info("normally-open schedule: %s", "held open" if scheduled else "window over")
            self._audit("gate", "hold_open_schedule", {"open": scheduled})

    def _apply(self) -> None:
        self.relay.hold(HOLD, self.held is not None or self.scheduled)

    def _audit(self, actor: str, action: str, details: JsonDict) -> None:
        self.writer.submit_kept(self.writer.store.audit, actor, action, details, ts=datetime.now(UTC))

    def snapshot(self) -> dict[str, object]:
        """For the health snapshot (the page's banner, the state topic)."""
        held = self.held
        return {"fire": self._fire, "fire_line_fault": self._trouble, "siren": self.relay.siren_on,
                "scheduled_open": self.scheduled,
                "hold_open": None if held is None else {"guard": held.guard, "reason": held.reason,
                                                        "since": ts_text(held.since), "until": ts_text(held.until)}}
