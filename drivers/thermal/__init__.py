"""Thermal sensor drivers: the config union (discriminated by `type`) and the explicit factory."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.thermal.ascii_line import AsciiLine, AsciiLineConfig
from drivers.thermal.emulated import EmulatedThermal, ThermalSimConfig
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config
from drivers.thermal.reading import Reading, ThermalSensor, ThermalStats

ThermalConfig = Annotated[
    GyMcu90614Config | GyMcu90640Config | AsciiLineConfig | ThermalSimConfig,
    Field(discriminator="type"),
]

THERMAL_TYPES = ("gy_mcu90614", "gy_mcu90640", "ascii_line", "sim")


def make_thermal(
    cfg: GyMcu90614Config | GyMcu90640Config | AsciiLineConfig | ThermalSimConfig,
) -> ThermalSensor:
    """The driver for `cfg` (not started: call start(), and close() when done)."""
    if isinstance(cfg, GyMcu90614Config):
        return GyMcu90614(cfg)
    if isinstance(cfg, GyMcu90640Config):
        return GyMcu90640(cfg)
    if isinstance(cfg, AsciiLineConfig):
        return AsciiLine(cfg)
    if isinstance(cfg, ThermalSimConfig):
        return EmulatedThermal(cfg)
    raise TypeError(f"not a thermal driver config: {type(cfg).__name__}")


__all__ = [
    "THERMAL_TYPES",
    "AsciiLineConfig",
    "GyMcu90614Config",
    "GyMcu90640Config",
    "Reading",
    "ThermalConfig",
    "ThermalSensor",
    "ThermalSimConfig",
    "ThermalStats",
    "make_thermal",
]
