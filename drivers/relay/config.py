"""`RelayConfigBase`: the settings every relay driver's config has (the pulse limit, the input poll)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
