"""The one gate-config builder of the tests: a gate.toml on simulators (folder camera, simulated
thermal sensor and relay unless other sections are given), optionally on a fresh copy of a prepared
demo store; each suite's helpers call it with their own defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

SIM_THERMAL = 'type = "sim"\nkind = "gy_mcu90614"'
SIM_RELAY = 'type = "sim"\nkind = "lcus"'


def gate_config(tmp: Path, camera: Path, *, store_from: Path | None = None, fresh: bool = True,
                gate_id: str | None = "south-1", community: str | None = None, fps: int = 20,
                reconnect_s: tuple[float, float] | None = None, thermal: str = SIM_THERMAL,
                relay: str = SIM_RELAY, policy: str | None = "anti_passback_s = 0",
                web_enabled: bool | None = False, extra: str = "", name: str = "gate.toml") -> Path:
    """Write `tmp/name` and return its path; the store is `tmp/data/gate.db`.

    `store_from`: a prepared root whose data/gate.db is copied in (when `fresh`; else the store left in
    `tmp/data` by the last run is kept). `thermal` and `relay`: the lines of those sections; `policy`
    None or `web_enabled` None leave that section out; `reconnect_s`: the camera's (min, max) backoff;
    `extra` is appended TOML."""
    data = tmp / "data"
    if fresh:
        data.mkdir(parents=True, exist_ok=True, mode=0o700)  # as the installer makes it (docs/security.md)
        if store_from is not None:
            shutil.copyfile(store_from / "data" / "gate.db", data / "gate.db")
    gate = [f'id = "{gate_id}"'] if gate_id else []
    if community:
        gate.append(f'community = "{community}"')
    gate.append(f'data_dir = "{data}"')
    camera_lines = ['type = "folder"', f'source = "{camera}"', f"fps = {fps}"]
    if reconnect_s is not None:
        camera_lines += [f"reconnect_min_s = {reconnect_s[0]}", f"reconnect_max_s = {reconnect_s[1]}"]
    sections = [("gate", "\n".join(gate)), ("camera", "\n".join(camera_lines)), ("thermal", thermal),
                ("relay", relay)]
    if policy is not None:
        sections.append(("policy", policy))
    if web_enabled is not None:
        sections.append(("web", f"enabled = {'true' if web_enabled else 'false'}"))
    text = "".join(f"[{title}]\n{body}\n" for title, body in sections) + extra
    path = tmp / name
    path.write_text(text + ("\n" if extra and not extra.endswith("\n") else ""), encoding="utf-8")
    return path
