"""The `[lane]` section: tracking, the k-of-n vote, the region, the relay pulse, door alarms, the siren and
hold-open (the fire input and the fail mode are the relay's: `[relay]`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from edge.config.base import Section
from edge.records import ALARM_KINDS, WeeklySchedule

SIREN_ALWAYS = ("fire_release", "fire_line_fault")  # these sound the siren whatever siren_alarms says


class LaneConfig(Section):
    detect_every: int = Field(1, ge=1, le=10, description="Run the detector on every Nth frame.")
    recognise_every: int = Field(10, ge=1, le=1000, description="Re-verify a named track every N frames.")
    votes_k: int = Field(2, ge=1, le=10, description="Recognitions that must agree before a face is named.")
    votes_n: int = Field(3, ge=1, le=20, description="... out of this many recent recognitions.")
    stranger_votes: int = Field(3, ge=1, le=20, description="Usable recognitions that named nobody before a "
                                "face is declared a stranger.")
    region: tuple[float, float, float, float] = Field((0.0, 0.0, 1.0, 1.0), description="Where the person "
                                                      "nearest the gate stands: x, y, w, h as fractions of the frame.")
    relay_pulse_ms: int = Field(800, ge=50, le=30000, description="How long the turnstile relay is closed.")
    temperature_wait_s: float = Field(1.5, ge=0, le=30, description="How long a named person may wait for a "
                                      "valid temperature (e.g. still too far away) before the sensor-fault "
                                      "policy decides.")
    pass_timeout_s: float = Field(8.0, gt=0, le=120, description="A grant with no PASS input within this long "
                                  "is recorded as 'granted, not passed' (relays with a PASS input only).")
    door_forced_alarm: bool = Field(True, description="Raise door_forced when the door sensor opens with no "
                                    "grant in the last pass_timeout_s (relays with a door input only).")
    door_held_s: float = Field(30.0, ge=0, le=3600, description="Raise door_held when the door sensor stays "
                               "open longer than this; 0 turns it off (relays with a door input only).")
    siren_alarms: tuple[str, ...] = Field(("fever", "door_forced"), description="Alarm kinds that sound the "
                                          "siren output (boards with one); fire_release and fire_line_fault "
                                          "always do. E.g. add \"stranger\" or \"passage_without_grant\".")
    @field_validator("siren_alarms")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - ALARM_KINDS)
        if unknown:
            raise ValueError(f"unknown alarm kind(s) {', '.join(unknown)}; known: {', '.join(sorted(ALARM_KINDS))}")
        return value

    siren_s: float = Field(30.0, gt=0, le=3600, description="How long one alarm sounds the siren (a repeat "
                           "extends it; the relay's siren_max_s caps it).")
    hold_open_max_minutes: int = Field(240, ge=1, le=1440, description="Longest hold-open a guard may ask for "
                                       "on the page.")
    hold_open_schedule: dict[str, list[tuple[str, str]]] = Field(
        default_factory=dict, description="Normally-open windows in the gate's local time, as a person's "
        "schedule: e.g. {mon = [[\"07:00\", \"09:00\"]], tue = [[\"07:00\", \"09:00\"]]}; empty: none.")

    @field_validator("hold_open_schedule")
    @classmethod
    def _schedule(cls, v: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        WeeklySchedule.from_json(v)  # ValueError: the day or time that is wrong
        return v

    def open_schedule(self) -> WeeklySchedule | None:
        data: dict[str, Any] = dict(self.hold_open_schedule)
        return WeeklySchedule.from_json(data) if data else None
