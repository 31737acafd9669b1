"""The base class every driver config subclasses: unknown keys refused, defaults validated.

Drivers never import `edge.config` (that would be an import cycle); the gate's config tree embeds
these classes instead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DriverConfig(BaseModel):
    """A driver's configuration section; every field has a default and a description."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
