"""`Driver`: one entry of a kind's driver table (relay, thermal), and what is derived from such a table.

Each kind has one table (drivers/relay/registry.py, drivers/thermal/registry.py): a tuple of
`Driver(type=..., config=ConfigClass, make=factory)`, one per driver module. From it come the
pydantic discriminated union of the configs (`config_union`, members in table order), the list of
`type` values (`type_names`) and the factory's lookup by `cfg.type` (`DriverTable.make`). Adding a
driver is its module plus one line in its kind's table.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import Field

from drivers.config import DriverConfig

D = TypeVar("D")


@dataclass(frozen=True)
class Driver(Generic[D]):
    """A driver: its config's `type` tag, its config class, and what makes the driver from a config."""

    type: str
    config: builtins.type[DriverConfig]  # (`type` is the tag field here)
    make: Callable[[Any], D]


class DriverTable(Generic[D]):
    """A kind's drivers by `type`; checks that the tags are unique and match the config classes."""

    def __init__(self, kind: str, drivers: tuple[Driver[D], ...]) -> None:
        self.kind = kind
        self.drivers = drivers
        self.by_type: dict[str, Driver[D]] = {}
        for driver in drivers:
            field = driver.config.model_fields.get("type")
            if field is None or field.default != driver.type:
                raise ValueError(f"{kind} driver {driver.type!r}: {driver.config.__name__}.type must default "
                                 f"to {driver.type!r}")
            if driver.type in self.by_type:
                raise ValueError(f"{kind} driver type {driver.type!r} is registered twice")
            self.by_type[driver.type] = driver

    @property
    def type_names(self) -> tuple[str, ...]:
        """The `type` values, in table order."""
        return tuple(self.by_type)

    def config_union(self) -> Any:
        """`Annotated[Union[configs...], Field(discriminator="type")]`, the configs in table order."""
        members = tuple(driver.config for driver in self.drivers)
        return Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007 (a union built at run time)

    def make(self, cfg: DriverConfig) -> D:
        """The driver for `cfg`, found by its `type`."""
        driver = self.by_type.get(getattr(cfg, "type", None))  # type: ignore[arg-type]
        if driver is None or not isinstance(cfg, driver.config):
            raise TypeError(f"not a {self.kind} driver config: {type(cfg).__name__}")
        return driver.make(cfg)
