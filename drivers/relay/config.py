"""`RelayConfigBase`: the settings every relay driver's config has (the pulse limit, the input poll, the
fail mode, and how the life-safety inputs and the siren behave where the board has them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from drivers.config import DriverConfig


class RelayConfigBase(DriverConfig):
    """The base of every relay driver's config; each subclass adds its `type` tag (a Literal)."""

    if TYPE_CHECKING:  # declared for the type checker only: each driver's config defines it as a Literal
        type: str

    max_pulse_ms: int = Field(30_000, ge=1, le=600_000, description="Longest pulse accepted; longer asks "
                                                                    "fail.")
    input_poll_s: float = Field(0.02, gt=0, le=5, description="How often inputs are read, where there are "
                                                              "any.")
    fail_mode: Literal["secure", "safe"] = Field(
        "safe", description="What the relay does when the gate stops: safe = left switched on (released: "
                            "nobody is shut in while the gate is down), secure = forced off (locked; for "
                            "turnstiles with a mechanical free exit). A fire input that is active always "
                            "leaves it released.")
    fire_contact: Literal["nc", "no"] = Field(
        "nc", description="The fire panel's contact (and the trouble contact): nc = normally closed, opens on "
                          "fire (a cut wire reads as fire), no = normally open, closes on fire.")
    fire_release_s: float = Field(3.0, ge=0.1, le=600, description="The fire input must read inactive this "
                                  "long before the turnstile may lock again (a flapping input keeps it released).")
    exit_pulse_ms: int = Field(3000, ge=50, le=60_000, description="How long the exit button releases the "
                                                                   "turnstile (boards with an exit input).")
    siren_max_s: float = Field(180.0, gt=0, le=3600, description="Longest the siren output sounds for one "
                                                                 "command (boards with a siren output).")
