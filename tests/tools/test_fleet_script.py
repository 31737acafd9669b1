"""scripts/fleet.py, the fleet load run (real sync code per gate, one real Mosquitto): a small bounded run
delivers every event once, every gate acks every delta, and the run refuses unbounded or remote targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fleet.py"


def _fleet(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_small_fleet_delivers_every_event_once_and_acks_every_delta() -> None:
    proc = _fleet("--gates", "6", "--rate", "5", "--seconds", "6", "--deltas-every", "2", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    ev = report["events"]
    assert ev["generated"] > 100 and ev["delivered"] == ev["generated"]
    assert ev["lost"] == 0 and ev["duplicates"] == 0 and ev["unexpected"] == 0 and ev["outbox_left"] == 0
    assert ev["latency_ms"]["n"] == ev["delivered"] and ev["latency_ms"]["p95"] > 0
    wl = report["whitelist"]
    assert wl["deltas_pushed"] >= 2 and wl["missing"] == [] and wl["rejected"] == []
    assert wl["acks_applied"] == wl["acks_expected"] == wl["deltas_pushed"] * 6
    assert report["ok"] is True and report["problems"] == []
    assert report["config"]["workers"] == 2 and len(report["resources"]["workers"]) == 2  # one per 5 gates
    assert set(report["resources"]["machine_cpu_s"]) >= {"user", "system", "steal"}


@pytest.mark.parametrize("args", [["--gates", "0"], ["--gates", "100000"], ["--seconds", "999999"],
                                  ["--broker", "mqtt://192.0.2.10:1883"], ["--workers", "65"]])
def test_unbounded_or_remote_runs_are_refused(args: list[str]) -> None:
    base = {"--gates": "2", "--rate": "1", "--seconds": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    proc = _fleet(*[x for kv in base.items() for x in kv], timeout=60)
    assert proc.returncode == 2 and "error:" in proc.stderr
