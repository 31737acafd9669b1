"""The one base class of every config section, the gate's and the drivers' alike: unknown keys refused,
defaults validated. It is defined in `drivers.config` (drivers never import `edge`, and the gate's tree
embeds the drivers' sections); `Section` is the same class under the name the gate's sections use."""

from __future__ import annotations

from drivers.config import DriverConfig as Section

__all__ = ["Section"]
