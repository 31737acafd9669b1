"""Thermal sensor drivers: the public names the gate imports. The drivers themselves are listed in
`drivers.thermal.registry`, the one table from which `ThermalConfig`, `THERMAL_TYPES` and
`make_thermal` come."""

from __future__ import annotations

from drivers.thermal.ascii_line import AsciiLineConfig
from drivers.thermal.config import ThermalConfigBase
from drivers.thermal.emulated import ThermalSimConfig
from drivers.thermal.gy_mcu90614 import GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640Config
from drivers.thermal.reading import Reading, ThermalSensor, ThermalStats
from drivers.thermal.registry import THERMAL_TYPES, ThermalConfig, make_thermal

__all__ = [
    "THERMAL_TYPES",
    "AsciiLineConfig",
    "GyMcu90614Config",
    "GyMcu90640Config",
    "Reading",
    "ThermalConfig",
    "ThermalConfigBase",
    "ThermalSensor",
    "ThermalSimConfig",
    "ThermalStats",
    "make_thermal",
]
