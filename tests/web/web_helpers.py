"""Helpers of the web suite: gate configs on a copy of the prepared store, guards, logging in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from support import gate_config as shared
from support.wait import poll_until

from edge.gate import Gate
from edge.web.auth import hash_password

PASSWORD = "correct horse battery"


def make_config(prepared: Path, tmp: Path, camera_dir: Path, extra: str = "", fps: int = 20) -> Path:
    """A gate config on a fresh copy of the prepared store; `extra` is appended TOML."""
    return shared.gate_config(tmp, camera_dir, store_from=prepared, gate_id="web-gate", fps=fps,
                              reconnect_s=(0.1, 0.2), policy=None, web_enabled=None, extra=extra)


def wait_for(cond: Callable[[], object], timeout: float = 60.0, gate: Gate | None = None) -> bool:
    """True once `cond()` holds (running the gate's supervisor pass before each look, as `gate run` does)."""
    def checked() -> object:
        if gate is not None:
            gate.check()
        return cond()

    return poll_until(checked, timeout, every=0.1)


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
