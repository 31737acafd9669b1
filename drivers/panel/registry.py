"""The access-panel outputs, one line each: the only place a panel driver is registered.

`PanelConfig` (the discriminated union of the configs, by `type`), `PANEL_TYPES` and `make_panel` are
derived from `DRIVERS` (drivers.registry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from drivers.panel.config import PanelConfigBase
from drivers.panel.none import NoPanel, NoPanelConfig
from drivers.panel.osdp_pd import OsdpConfig, OsdpPanel
from drivers.panel.protocol import Panel
from drivers.panel.wiegand import WiegandConfig, WiegandPanel
from drivers.registry import Driver, DriverTable

DRIVERS: tuple[Driver[Panel], ...] = (
    Driver("none", NoPanelConfig, NoPanel),
    Driver("wiegand", WiegandConfig, WiegandPanel),
    Driver("osdp", OsdpConfig, OsdpPanel),
)

TABLE = DriverTable("panel", DRIVERS)
PANEL_TYPES = TABLE.type_names

if TYPE_CHECKING:
    PanelConfig: TypeAlias = PanelConfigBase
else:
    PanelConfig = TABLE.config_union()


def make_panel(cfg: PanelConfig) -> Panel:
    """The driver for `cfg` (not started: start() opens the lines or the port; close() at the end)."""
    return TABLE.make(cfg)
