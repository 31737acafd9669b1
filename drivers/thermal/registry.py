"""The thermal sensor drivers, one line each: the only place a thermal driver is registered.

`ThermalConfig` (the discriminated union of the configs, by `type`), `THERMAL_TYPES` and
`make_thermal` are derived from `DRIVERS`; the union's members keep the table's order (config check
and `gate config example` list them in it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from drivers.registry import Driver, DriverTable
from drivers.thermal.ascii_line import AsciiLine, AsciiLineConfig
from drivers.thermal.config import ThermalConfigBase
from drivers.thermal.emulated import EmulatedThermal, ThermalSimConfig
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config
from drivers.thermal.reading import ThermalSensor

DRIVERS: tuple[Driver[ThermalSensor], ...] = (
    Driver("gy_mcu90614", GyMcu90614Config, GyMcu90614),
    Driver("gy_mcu90640", GyMcu90640Config, GyMcu90640),
    Driver("ascii_line", AsciiLineConfig, AsciiLine),
    Driver("sim", ThermalSimConfig, EmulatedThermal),
)

TABLE = DriverTable("thermal", DRIVERS)
THERMAL_TYPES = TABLE.type_names

if TYPE_CHECKING:
    ThermalConfig: TypeAlias = ThermalConfigBase
else:
    ThermalConfig = TABLE.config_union()


def make_thermal(cfg: ThermalConfig) -> ThermalSensor:
    """The driver for `cfg` (not started: call start(), and close() when done)."""
    return TABLE.make(cfg)
