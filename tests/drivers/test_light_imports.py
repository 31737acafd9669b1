"""Loading a config or running `gate --help` imports drivers.relay, drivers.thermal and drivers.cli; none of
them may pull in the heavy or hardware-only packages (those are imported where a device is opened)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("gpiod", "minimalmodbus", "cv2", "onnxruntime", "fastapi")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("modules", ["drivers.relay, drivers.thermal", "drivers.cli"])
def test_importing_drivers_loads_no_heavy_package(modules: str) -> None:
    code = (f"import sys, json\nimport {modules}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=60, check=True)
    assert json.loads(out.stdout) == []


def test_the_hardware_packages_load_where_a_device_is_set_up() -> None:
    """The imports moved, they did not vanish: setting up GPIO lines loads gpiod, opening a Modbus board
    loads minimalmodbus (before the port itself fails to open here)."""
    code = ("import sys\n"
            "from drivers.relay.gpio import GpioConfig, output_settings\n"
            "from drivers.relay.modbus_rtu import ModbusRtuConfig, ModbusRtuRelay\n"
            "output_settings(GpioConfig(), relay_on=False)\n"
            "try:\n    ModbusRtuRelay(ModbusRtuConfig(port='/nonexistent/tty'))._open()\n"
            "except OSError:\n    pass\n"
            "print('gpiod' in sys.modules, 'minimalmodbus' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"]
