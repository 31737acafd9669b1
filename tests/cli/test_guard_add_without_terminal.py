"""`gate guard add NAME < /dev/null` (a script, a service, ssh without a tty): one line saying how to give
the password, exit 2, no traceback and no guard; with --password-stdin it works from a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge.store import Store

REPO = Path(__file__).resolve().parents[2]


def gate(*args: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_no_terminal_no_traceback_and_the_pipe_works(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    closed = gate("guard", "add", "zhang", "--role", "viewer", "--data-dir", data, stdin=None)
    assert closed.returncode == 2 and "Traceback" not in closed.stderr
    assert len(closed.stderr.strip().splitlines()) == 1 and "--password-stdin" in closed.stderr
    piped = gate("guard", "add", "zhang", "--role", "viewer", "--data-dir", data, "--password-stdin",
                 stdin="a long enough secret\n")
    assert piped.returncode == 0, piped.stderr
    with Store.open(tmp_path / "data" / "gate.db") as store:
        guard = store.get_guard("zhang")
        assert guard is not None and guard.role == "viewer"
