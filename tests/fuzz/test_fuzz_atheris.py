"""scripts/fuzz.py, the coverage-guided (atheris) fuzzer of the message, config and serial parsers: a short
bounded run of every target finds nothing, and the harness does report a finding (a planted bug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz.py"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--findings", str(tmp_path / "findings"),
                           "--corpus", str(tmp_path / "corpus"), *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_every_parser_survives_a_bounded_run(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--seconds", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for target in ("push", "push-signed", "peer-event", "config", "serial"):
        row = next(line for line in lines if line.startswith(target + " "))
        assert " ok " in row, row
        executed = int(row.split()[2])
        assert executed > 100, row  # the fuzzer really ran inputs through the parser
    assert not (tmp_path / "findings").exists() or not any((tmp_path / "findings").iterdir())
    assert any((tmp_path / "corpus" / "push").iterdir())  # coverage-guided: it kept new inputs


def test_a_planted_bug_is_found_and_its_input_kept(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--seconds", "60", "--target", "canary")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert "canary" in proc.stdout and "FOUND" in proc.stdout
    crashes = list((tmp_path / "findings").glob("canary-crash-*"))
    assert crashes and crashes[0].read_bytes().startswith(b"gate")
