"""Helpers of the deployment suite (imported by its tests)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from support.broker import Mosquitto
from support.gate_config import SIM_RELAY, SIM_THERMAL, gate_config

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
    """A gate config on simulators (folder camera, sim thermal, sim relay) from the tests' one builder;
    `thermal`/`relay` replace those sections (given whole, with their [header])."""
    cam = camera if camera is not None else write_frames(root / "frames")

    def body(section: str | None, default: str) -> str:
        return default if section is None else section.split("\n", 1)[1].rstrip("\n")

    return gate_config(root, cam, gate_id=None, fps=30, policy=None, web_enabled=None,
                       thermal=body(thermal, SIM_THERMAL), relay=body(relay, SIM_RELAY), extra=extra)


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
