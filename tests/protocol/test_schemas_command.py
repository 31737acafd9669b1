"""`gate admin schemas` regenerates docs/schemas/ exactly, and a directory it cannot write is one
clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "schemas"


def _gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_gate_admin_schemas_writes_what_docs_schemas_holds(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    done = _gate("admin", "schemas", "--out", str(out))
    assert done.returncode == 0, done.stderr
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*.schema.json")}
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    asyncapi = (tmp_path / "asyncapi.yaml").read_bytes()
    assert len(committed) >= 7 and written == committed
    assert asyncapi == (REPO / "docs" / "asyncapi.yaml").read_bytes()
    assert sorted(done.stdout.split()) == sorted([str(out / name) for name in committed]
                                                 + [str(tmp_path / "asyncapi.yaml")])


def test_gate_admin_schemas_into_a_file_fails_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    done = _gate("admin", "schemas", "--out", str(blocker / "schemas"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "--out" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
