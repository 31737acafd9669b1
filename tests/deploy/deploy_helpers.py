"""Helpers of the deployment suite (imported by its tests)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from support.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def write_frames(folder: Path, count: int = 4) -> Path:
    """A few real 640x480 PNG frames (grey levels with a moving bar) for a folder camera."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = np.full((480, 640, 3), 90, np.uint8)
        cv2.rectangle(img, (40 + 60 * i, 100), (120 + 60 * i, 380), (200, 180, 160), -1)
        assert cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return folder


def sim_config(root: Path, extra: str = "", *, camera: Path | None = None, thermal: str | None = None,
               relay: str | None = None) -> Path:
    """A gate config on simulators: folder camera, sim thermal, sim relay; sections may be replaced."""
    cam = camera if camera is not None else write_frames(root / "frames")
    thermal = thermal if thermal is not None else '[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n'
    relay = relay if relay is not None else '[relay]\ntype = "sim"\nkind = "lcus"\n'
    path = root / "gate.toml"
    path.write_text(f'[gate]\ndata_dir = "{root / "data"}"\n'
                    f'[camera]\ntype = "folder"\nsource = "{cam}"\nfps = 30\n'
                    f"{thermal}{relay}{extra}")
    return path


@dataclass
class Broker:
    """A running password-protected Mosquitto (the tests' one runner) and the one account it accepts."""

    mosquitto: Mosquitto
    user: str
    password: str

    @property
    def port(self) -> int:
        return self.mosquitto.port

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.mosquitto.proc is not None, "the broker is not running"
        return self.mosquitto.proc
