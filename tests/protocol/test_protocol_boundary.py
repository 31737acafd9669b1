"""`edge.protocol` is the protocol only: importing all of it loads no gate, admin, store or MQTT code;
nor numpy; and `gate --help` loads neither MQTT nor OpenCV (the admin commands import them inside)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = sorted(p.stem for p in (REPO / "edge" / "protocol").glob("*.py") if p.stem != "__init__")
FORBIDDEN = ("edge.sync", "edge.admin", "edge.store", "edge.gate", "edge.cli", "paho", "sqlite_utils", "sqlite3")


def _loaded_after(code: str) -> list[str]:
    """The module names loaded by a fresh interpreter after running `code`."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_protocol_modules_import_nothing_of_the_gate_the_admin_the_store_or_mqtt() -> None:
    assert {"topics", "payloads", "messages", "signing", "schemas"} <= set(PROTOCOL)
    loaded = _loaded_after("\n".join(f"import edge.protocol.{name}" for name in PROTOCOL))
    assert "edge.protocol.schemas" in loaded  # the probe did import them
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == [], bad
    assert _heavy(loaded, ("numpy", "cv2")) == []  # numpy only where templates are decoded


def _heavy(loaded: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if m.split(".")[0] in names]


def test_gate_help_loads_no_mqtt_or_opencv() -> None:
    loaded = _loaded_after("from edge.cli import build_parser\nbuild_parser().format_help()")
    assert "edge.cli.admin" in loaded
    assert _heavy(loaded, ("paho", "cv2", "onnxruntime")) == []
