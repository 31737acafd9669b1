"""scripts/fleet.py (edge.tools.fleet), the fleet load run (real sync code per gate, one real Mosquitto): a
small bounded run delivers every event once, every gate acks every delta, the verifier fails a run that lost
an event or an ack, and the run refuses unbounded, remote or malformed targets in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.tools.fleet.verify import Run, all_acked, summarise

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fleet.py"


def _fleet(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.slow
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
                                  ["--broker", "mqtt://192.0.2.10:1883"], ["--workers", "65"],
                                  ["--gates", "two"], ["--rate", "nan"], ["--no-such-option", "1"]])
def test_unbounded_or_remote_runs_are_refused(args: list[str]) -> None:
    base = {"--gates": "2", "--rate": "1", "--seconds": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    proc = _fleet(*[x for kv in base.items() for x in kv], timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_verifier_fails_a_run_that_lost_an_event_or_an_ack() -> None:
    run = Run(generated=["e1", "e2", "e3"], delivered={"e1", "e3"}, latencies_s=[0.01, 0.02],
              pushes={("c0", 1): 100.0}, acks=[("g1", 1, "applied", "", 100.2)],
              gate_community={"g1": "c0", "g2": "c0"})
    report = summarise(run)
    assert report["ok"] is False and report["events"]["lost_ids"] == ["e2"]
    assert report["whitelist"]["missing"] == [{"gate": "g2", "version": 1}]
    assert report["problems"] == ["1 events lost", "1 whitelist acks missing"]
    assert not all_acked({("g1", 1)}, run) and all_acked({("g1", 1), ("g2", 1)}, run)
    run.delivered.add("e2")
    run.acks.append(("g2", 1, "applied", "", 100.3))
    healed = summarise(run)
    assert healed["ok"] is True and healed["whitelist"]["acks_applied"] == 2
    assert healed["whitelist"]["ack_latency_ms"]["n"] == 2
