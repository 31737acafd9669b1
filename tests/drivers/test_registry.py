"""The driver tables: the config union, the type list and the factory all come from one table per kind."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

import pytest
from pydantic import Field, TypeAdapter

from drivers import relay, thermal
from drivers.config import DriverConfig
from drivers.registry import Driver, DriverTable
from drivers.relay.registry import DRIVERS as RELAY_DRIVERS
from drivers.thermal.registry import DRIVERS as THERMAL_DRIVERS


@pytest.mark.parametrize(("union", "types", "table", "order"), [
    (relay.RelayConfig, relay.RELAY_TYPES, RELAY_DRIVERS, ("lcus", "modbus_rtu", "gpio", "sim")),
    (thermal.ThermalConfig, thermal.THERMAL_TYPES, THERMAL_DRIVERS, ("gy_mcu90614", "gy_mcu90640", "ascii_line",
                                                                     "sim")),
])
def test_union_and_types_follow_the_table(union: object, types: tuple[str, ...], table: tuple[Driver[object], ...],
                                          order: tuple[str, ...]) -> None:
    assert types == order == tuple(d.type for d in table)
    inner, field = get_args(union)  # Annotated[Union[...], Field(discriminator="type")]
    assert field.discriminator == "type"
    assert list(get_args(inner)) == [d.config for d in table]
    for d in table:
        assert type(TypeAdapter(union).validate_python({"type": d.type})) is d.config


def test_make_picks_the_driver_by_type() -> None:
    cfg = relay.LcusConfig(port="/dev/null")
    assert type(relay.make_relay(cfg)).__name__ == "LcusRelay"
    sensor = thermal.make_thermal(thermal.AsciiLineConfig(port="/dev/null"))
    assert type(sensor).__name__ == "AsciiLine"
    with pytest.raises(TypeError, match="not a relay driver config"):
        relay.make_relay(thermal.AsciiLineConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a thermal driver config"):
        thermal.make_thermal(relay.LcusConfig())  # type: ignore[arg-type]


class _AConfig(DriverConfig):
    type: Literal["a"] = Field("a")


def test_a_table_refuses_a_tag_that_does_not_match_its_config_or_repeats() -> None:
    assert DriverTable("x", (Driver("a", _AConfig, object),)).type_names == ("a",)
    with pytest.raises(ValueError, match="must default to 'b'"):
        DriverTable("x", (Driver("b", _AConfig, object),))
    with pytest.raises(ValueError, match="registered twice"):
        DriverTable("x", (Driver("a", _AConfig, object), Driver("a", _AConfig, object)))
    assert get_origin(DriverTable("x", (Driver("a", _AConfig, object),)).config_union()) is not None
