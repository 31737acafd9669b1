"""`ThermalConfigBase`: the base of every thermal driver's config (its `type` tag is each driver's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.config import DriverConfig


class ThermalConfigBase(DriverConfig):
    """The base of every thermal driver's config; each subclass adds its `type` tag (a Literal)."""

    if TYPE_CHECKING:  # declared for the type checker only: each driver's config defines it as a Literal
        type: str
