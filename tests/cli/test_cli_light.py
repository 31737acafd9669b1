"""`gate --help` and `gate config ...` stay light on a small device: they import none of the runtime's heavy
libraries (OpenCV, onnxruntime, the device libraries, the web server, the MQTT client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("onnxruntime", "cv2", "gpiod", "minimalmodbus", "fastapi", "uvicorn", "paho", "insightface")
ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, os, sys
from edge.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(os.environ["HEAVY"].split()))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def _heavy_imports(*argv: str) -> tuple[object, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "HEAVY": " ".join(HEAVY)})
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    return result["code"], result["heavy"]


@pytest.mark.parametrize("argv", [
    ["--help"], ["config", "--help"], ["config", "example"], ["config", "show"],
    ["config", "check", "config/gate.example.toml"], ["admin", "--help"], ["guard", "--help"],
    ["drivers", "--help"], ["bench", "--help"], ["calibrate", "thermal", "--help"],
])
def test_command_imports_nothing_heavy(argv: list[str]) -> None:
    code, heavy = _heavy_imports(*argv)
    assert code in (0, None) and heavy == [], (argv, code, heavy)


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: `gate faces --help` parses fine, and a real command does import cv2."""
    code, heavy = _heavy_imports("faces", "/nonexistent.jpg")
    assert "cv2" in heavy and code != 0


def test_gate_help_loads_not_even_the_config_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """`gate --help` (the first thing an installer types) parses no config: no pydantic, numpy or crypto."""
    monkeypatch.setattr(sys.modules[__name__], "HEAVY", (*HEAVY, "pydantic", "numpy", "cryptography"))
    code, heavy = _heavy_imports("--help")
    assert code == 0 and heavy == []


def test_the_drivers_placeholders_say_what_the_real_groups_say() -> None:
    import argparse

    from drivers.cli import add_commands
    from edge.cli import DRIVER_GROUPS

    sub = argparse.ArgumentParser().add_subparsers()
    add_commands(sub)
    real = {a.dest: a.help for a in sub._choices_actions}
    assert real == DRIVER_GROUPS
