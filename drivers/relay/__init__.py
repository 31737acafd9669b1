"""Relay drivers: the config union (discriminated by `type`) and the explicit factory."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.relay.emulated import EmulatedRelay, RelaySimConfig
from drivers.relay.gpio import GpioConfig, GpioRelay
from drivers.relay.lcus import LcusConfig, LcusRelay
from drivers.relay.modbus_rtu import ModbusRtuConfig, ModbusRtuRelay
from drivers.relay.protocol import InputEvent, Relay, RelayError, RelayStats

RelayConfig = Annotated[
    LcusConfig | ModbusRtuConfig | GpioConfig | RelaySimConfig,
    Field(discriminator="type"),
]

RELAY_TYPES = ("lcus", "modbus_rtu", "gpio", "sim")


def make_relay(cfg: LcusConfig | ModbusRtuConfig | GpioConfig | RelaySimConfig) -> Relay:
    """The driver for `cfg` (not started: start() opens it and forces the relay off; close() at the end)."""
    if isinstance(cfg, LcusConfig):
        return LcusRelay(cfg)
    if isinstance(cfg, ModbusRtuConfig):
        return ModbusRtuRelay(cfg)
    if isinstance(cfg, GpioConfig):
        return GpioRelay(cfg)
    if isinstance(cfg, RelaySimConfig):
        return EmulatedRelay(cfg)
    raise TypeError(f"not a relay driver config: {type(cfg).__name__}")


__all__ = [
    "RELAY_TYPES",
    "GpioConfig",
    "InputEvent",
    "LcusConfig",
    "ModbusRtuConfig",
    "Relay",
    "RelayConfig",
    "RelayError",
    "RelaySimConfig",
    "RelayStats",
    "make_relay",
]
