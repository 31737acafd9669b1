"""`scripts/run-demo --community` as a newcomer runs it: the broker, the hub and two gates whose whitelists
start empty; both gates grant residents they learned only from the hub, and the hub's archive holds each
gate's events once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / ".demo" / "community" / "hub"


@pytest.mark.slow
def test_the_community_demo_gates_learn_everyone_from_the_hub() -> None:
    proc = subprocess.Popen([str(REPO / "scripts" / "run-demo"), "--community"], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"})
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()

    def granted(gate: str) -> set[str]:
        return {line.split("(")[1].split(")")[0] for line in list(lines)
                if line.startswith(f"[{gate:5s}]") and " GRANT " in line and "(R" in line}
    try:
        wait_until(lambda: (len(granted("entry")) >= 2 and len(granted("exit")) >= 2) or proc.poll() is not None,
                   300, "both gates granting residents")
        assert proc.poll() is None, "".join(lines[-30:])
        assert any("empty whitelists" in line for line in lines)
        text = "".join(lines)
        page = re.search(r"hub page on (http://\S+?)/", text)
        password = re.search(r"sign in as office / (\S+) ", text)
        assert page and password, text[-2000:]
        with httpx.Client(base_url=page.group(1), follow_redirects=False) as http:
            token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
            assert token
            signed_in = http.post("/login", data={"csrf": token.group(1), "name": "office",
                                                  "password": password.group(1)})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
            board = http.get("/")
            assert board.status_code == 200 and "entry" in board.text and "exit" in board.text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(90)
    assert proc.returncode == 0, "".join(lines[-30:])
    done = subprocess.run([sys.executable, "-m", "edge", "hub", "events", "--data-dir", str(HUB), "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    ids = Counter(e["event_id"] for e in events)
    assert ids and max(ids.values()) == 1  # each event once
    by_gate = Counter(e["gate_id"] for e in events if e["decision"] == "grant" and e["person_id"])
    assert by_gate["entry"] >= 2 and by_gate["exit"] >= 2, by_gate
