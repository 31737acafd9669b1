"""GPIO relay: configuration and the errors an installer sees without a GPIO chip (no chip is faked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from drivers.relay import GpioConfig, RelayConfig, RelayError, make_relay
from drivers.relay.gpio import GpioRelay


def test_config_defaults_and_validation() -> None:
    raw = {"type": "gpio", "line": 5, "pass_line": 6, "door_line": 13}
    cfg = TypeAdapter(RelayConfig).validate_python(raw)
    assert isinstance(cfg, GpioConfig) and cfg.chip == "/dev/gpiochip0" and cfg.inputs_active_low
    assert all(f.description for f in GpioConfig.model_fields.values())
    with pytest.raises(ValidationError, match="different offsets"):
        GpioConfig(line=5, pass_line=5)
    with pytest.raises(ValidationError, match="different offsets"):
        GpioConfig(line=5, pass_line=6, door_line=6)
    with pytest.raises(ValidationError):
        GpioConfig(line=-1)
    with pytest.raises(ValidationError):
        GpioConfig.model_validate({"line": 4, "bias": "floating"})
    with pytest.raises(ValidationError):
        GpioConfig.model_validate({"line": 4, "pin": 4})


def test_inputs_named_from_config() -> None:
    assert GpioRelay(GpioConfig(line=1, pass_line=2)).input_names == ("pass",)
    assert GpioRelay(GpioConfig(line=1)).input_names == ()


def test_missing_chip_is_a_clear_error(tmp_path: Path) -> None:
    relay = make_relay(GpioConfig(chip=str(tmp_path / "gpiochip7"), line=3))
    with pytest.raises(RelayError, match=r"gpiochip7 does not exist"):
        relay.start()
    assert not relay.state


def test_not_a_gpio_chip_is_a_clear_error() -> None:
    assert os.path.exists("/dev/null")
    relay = make_relay(GpioConfig(chip="/dev/null", line=3))
    with pytest.raises(RelayError, match="not a GPIO character device"):
        relay.start()


@pytest.mark.skipif(not os.path.exists("/dev/gpiochip0"), reason="needs a real GPIO chip")
def test_real_chip_line_out_of_range() -> None:
    relay = make_relay(GpioConfig(chip="/dev/gpiochip0", line=1023))
    with pytest.raises(RelayError):
        relay.start()
