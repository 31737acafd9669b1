"""The `[lane]` section: tracking, the k-of-n vote, the region, the relay pulse and door alarms."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


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
