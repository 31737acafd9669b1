"""The `[policy]` section: who may pass, when, and the fever and sensor-fault rules."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator, model_validator

from edge.config.base import Section


class PolicyConfig(Section):
    """The access rules of one gate (one camera looking in one direction)."""

    model_config = ConfigDict(frozen=True)

    direction: Literal["in", "out"] = Field("in", description="Which way a person this camera sees is going.")
    timezone: str = Field("UTC", description="IANA time zone of the gate (e.g. Europe/Prague); weekly "
                          "schedules are in this local time.")
    temperature_screening: bool = Field(True, description="Screen body temperature; when on, a missing or "
                                        "faulty reading is handled by sensor_fault_policy.")
    fever_c: float = Field(37.3, ge=35, le=42, description="Body temperature from which entry is refused.")
    require_confirmation: bool = Field(True, description="Refuse for fever only after a second reading "
                                       "agreed; a first high reading asks for a re-check instead.")
    max_temperature_age_s: float = Field(3.0, gt=0, le=600, description="Older readings are stale and "
                                         "handled like a sensor fault.")
    sensor_fault_policy: Literal["deny", "allow_and_alarm"] = Field(
        "deny", description="A sensor fault, missing or stale reading: deny, or allow and raise an alarm.")
    anti_passback_s: float = Field(60.0, ge=0, le=86400, description="Refuse a person who passed in the same "
                                   "direction (at any gate) less than this long ago; 0 turns it off.")
    require_liveness: bool = Field(False, description="Refuse faces the liveness check did not find live "
                                   "(needs a thermal array); an unavailable check counts as a sensor fault.")
    stranger_alarm_every_s: float = Field(30.0, ge=0, le=86400, description="A track of an unknown face "
                                          "raises the stranger alarm at most this often.")

    @model_validator(mode="before")
    @classmethod
    def _no_gate_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "gate_id" in data:
            raise ValueError("gate_id is not a [policy] option: the gate's id is [gate] id")
        return data

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a directory, a name too long
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
