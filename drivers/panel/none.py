"""`type = "none"`: no access panel; the gate drives its relay itself (the default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from drivers.panel.config import PanelConfigBase
from drivers.panel.protocol import Indicators, PanelCommand, PanelStats


class NoPanelConfig(PanelConfigBase):
    type: Literal["none"] = Field("none", description="No access panel: the gate's relay opens the turnstile.")


class NoPanel:
    """Nothing to send to; the gate does not hook it into the lane."""

    def __init__(self, cfg: NoPanelConfig) -> None:
        self.cfg = cfg
        self.on_command: Callable[[PanelCommand], None] | None = None
        self._indicators = Indicators()

    def start(self) -> None:
        return None

    def send_card(self, card: int) -> None:
        return None

    @property
    def online(self) -> bool:
        return True

    @property
    def stats(self) -> PanelStats:
        return PanelStats()

    @property
    def indicators(self) -> Indicators:
        return self._indicators

    def close(self) -> None:
        return None
