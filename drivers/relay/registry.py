"""The relay drivers, one line each: the only place a relay driver is registered.

`RelayConfig` (the discriminated union of the configs, by `type`), `RELAY_TYPES` and `make_relay`
are derived from `DRIVERS`; the union's members keep the table's order (config check and
`gate config example` list them in it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from drivers.registry import Driver, DriverTable
from drivers.relay.config import RelayConfigBase
from drivers.relay.emulated import EmulatedRelay, RelaySimConfig
from drivers.relay.gpio import GpioConfig, GpioRelay
from drivers.relay.lcus import LcusConfig, LcusRelay
from drivers.relay.modbus_rtu import ModbusRtuConfig, ModbusRtuRelay
from drivers.relay.protocol import Relay

DRIVERS: tuple[Driver[Relay], ...] = (
    Driver("lcus", LcusConfig, LcusRelay),
    Driver("modbus_rtu", ModbusRtuConfig, ModbusRtuRelay),
    Driver("gpio", GpioConfig, GpioRelay),
    Driver("sim", RelaySimConfig, EmulatedRelay),
)

TABLE = DriverTable("relay", DRIVERS)
RELAY_TYPES = TABLE.type_names

if TYPE_CHECKING:
    RelayConfig: TypeAlias = RelayConfigBase
else:
    RelayConfig = TABLE.config_union()


def make_relay(cfg: RelayConfig) -> Relay:
    """The driver for `cfg` (not started: start() opens it and forces the relay off; close() at the end)."""
    return TABLE.make(cfg)
