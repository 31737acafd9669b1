"""Relay drivers: the public names the gate imports. The drivers themselves are listed in
`drivers.relay.registry`, the one table from which `RelayConfig`, `RELAY_TYPES` and `make_relay` come."""

from __future__ import annotations

from drivers.relay.config import RelayConfigBase
from drivers.relay.emulated import RelaySimConfig
from drivers.relay.gpio import GpioConfig
from drivers.relay.lcus import LcusConfig
from drivers.relay.modbus_rtu import ModbusRtuConfig
from drivers.relay.protocol import InputEvent, Relay, RelayError, RelayStats
from drivers.relay.registry import RELAY_TYPES, RelayConfig, make_relay

__all__ = [
    "RELAY_TYPES",
    "GpioConfig",
    "InputEvent",
    "LcusConfig",
    "ModbusRtuConfig",
    "Relay",
    "RelayConfig",
    "RelayConfigBase",
    "RelayError",
    "RelaySimConfig",
    "RelayStats",
    "make_relay",
]
