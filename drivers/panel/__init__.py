"""Access-panel outputs: the gate as a standard reader of an access controller (Wiegand, OSDP).

`protocol` (the `Panel` contract), `config` (the base of every panel config), one module per output
(`none`, `wiegand` with its frames in `wiegand_frame`), `registry` (the table). Drivers never import `edge`.
"""

from drivers.panel.config import PanelConfigBase
from drivers.panel.protocol import Indicators, Panel, PanelCommand, PanelError, PanelStats
from drivers.panel.registry import PANEL_TYPES, PanelConfig, make_panel

__all__ = ["PANEL_TYPES", "Indicators", "Panel", "PanelCommand", "PanelConfig", "PanelConfigBase", "PanelError",
           "PanelStats", "make_panel"]
