"""`PanelConfigBase`: what every access-panel output's config has (what the gate does without the panel,
and whether it drives its own relay as well)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from drivers.config import DriverConfig


class PanelConfigBase(DriverConfig):
    """The base of every panel driver's config; each subclass adds its `type` tag (a Literal)."""

    if TYPE_CHECKING:  # declared for the type checker only: each driver's config defines it as a Literal
        type: str

    drive_relay: bool = Field(False, description="Also pulse the gate's own relay on a grant (the panel "
                              "normally drives the lock itself).")
    fallback: Literal["relay", "deny"] = Field("deny", description="While the panel is offline: \"relay\" "
                                               "opens with the gate's own relay, \"deny\" opens nothing.")
    obey_output: bool = Field(True, description="Pulse the gate's relay when the panel turns a reader "
                              "output on (OSDP osdp_OUT), where the protocol gives one.")
    obey_led_green: bool = Field(False, description="Pulse the gate's relay when the panel lights the "
                                 "reader's LED green (OSDP osdp_LED: panels that answer a grant only so).")
