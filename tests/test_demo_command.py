"""`gate demo` as README command 1 runs it: a subprocess on the demo config (paths moved into tmp, the page
on a free port) prints its decisions and a one-off operator password that signs in to the guards' page."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_gate_demo_prints_decisions_and_serves_the_page(tmp_path: Path) -> None:
    port = _free_port()
    demo = (ROOT / "config" / "demo.toml").read_text()
    demo = demo.replace('"../.demo/data"', f'"{tmp_path / "data"}"')
    demo = demo.replace('"../.demo/scene"', f'"{tmp_path / "scene"}"')
    cfg = tmp_path / "demo.toml"
    cfg.write_text(demo + f"\n[web]\nport = {port}\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--config", str(cfg), "--seconds", "40"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    lines: list[str] = []
    password = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"sign in as demo / (\S+),", line)
            if m:
                password = m.group(1)
            if any(" GRANT " in x for x in lines) and password:
                break
        assert password, "".join(lines)
        assert any(re.search(r"GRANT .*\(R00\d\)", x) for x in lines), "".join(lines)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(150):  # the page comes up beside the lane; allow it a moment
                try:
                    health = client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health.json()["ok"] is True
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            bad = client.post("/login", data={"csrf": csrf.group(1), "name": "demo", "password": "guess"})
            assert bad.status_code in (401, 403), bad.status_code
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            ok = client.post("/login", data={"csrf": csrf.group(1), "name": "demo", "password": password},
                             follow_redirects=False)
            assert ok.status_code == 303, ok.text
            page = client.get("/")
            assert page.status_code == 200 and "demo" in page.text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.returncode
