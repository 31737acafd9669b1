"""Helpers of the web suite: gate configs on a copy of the prepared store, guards, logging in."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from edge.gate import Gate
from edge.web.auth import hash_password

PASSWORD = "correct horse battery"


def make_config(prepared: Path, tmp: Path, camera_dir: Path, extra: str = "", fps: int = 20) -> Path:
    """A gate config on a fresh copy of the prepared store; `extra` is appended TOML."""
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(prepared / "data" / "gate.db", tmp / "data" / "gate.db")
    cfg = tmp / "gate.toml"
    cfg.write_text(f'[gate]\nid = "web-gate"\ndata_dir = "{tmp / "data"}"\n[camera]\ntype = "folder"\n'
                   f'source = "{camera_dir}"\nfps = {fps}\nreconnect_min_s = 0.1\nreconnect_max_s = 0.2\n'
                   f'[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n[relay]\ntype = "sim"\nkind = "lcus"\n{extra}')
    return cfg


def wait_for(cond: Callable[[], object], timeout: float = 20.0, gate: Gate | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if gate is not None:
            gate.check()
        if cond():
            return True
        time.sleep(0.1)
    return False


def add_guard(gate: Gate, name: str, role: str, password: str = PASSWORD) -> str:
    gate.writer.submit(gate.store.add_guard, name, role, hash_password(password)).result(10)
    return name


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def body_csrf(html: str) -> str:
    m = re.search(r'data-csrf="([^"]*)"', html)
    assert m and m.group(1), "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (from the status page)."""
    form = client.get("/login")
    r = client.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": password},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/")
    assert page.status_code == 200 and name in page.text
    return body_csrf(page.text)
