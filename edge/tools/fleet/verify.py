"""What a fleet run proves: from what the gates generated and what the collector received, the events
lost, duplicated or unexpected, the latency, and the whitelist acks per gate; `problems` lists every
reason the run failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.tools.stats import summary

JsonDict = dict[str, Any]


@dataclass
class Run:
    """What the parent gathers during a run, turned into the report by `summarise`."""

    generated: list[str] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)
    duplicates: int = 0
    pushes: dict[tuple[str, int], float] = field(default_factory=dict)  # (community, version) -> publish time
    acks: list[tuple[str, int | None, str, str, float]] = field(default_factory=list)
    gate_community: dict[str, str] = field(default_factory=dict)
    gates: dict[str, JsonDict] = field(default_factory=dict)  # per-gate figures from the workers


def summarise(run: Run) -> JsonDict:
    """Events (lost, duplicates, latency) and acks per gate; `problems` lists every reason to fail."""
    generated = set(run.generated)
    lost = sorted(generated - run.delivered)
    unexpected = sorted(run.delivered - generated)
    applied: dict[str, set[int]] = {g: set() for g in run.gate_community}
    ack_latency, rejected = [], []
    for gate, version, status, code, t in run.acks:
        push_t = run.pushes.get((run.gate_community.get(gate, ""), version or 0))
        if status == "applied" and push_t is not None and version is not None:
            if version not in applied[gate]:
                ack_latency.append((t - push_t) * 1000)
            applied[gate].add(version)
        elif status != "applied":
            rejected.append({"gate": gate, "version": version, "status": status, "code": code})
    missing = [{"gate": g, "version": v} for g, c in sorted(run.gate_community.items())
               for (pc, v) in sorted(run.pushes) if pc == c and v not in applied[g]]
    outbox_left = sum(int(g.get("outbox_left", 0)) for g in run.gates.values())
    problems = []
    if lost:
        problems.append(f"{len(lost)} events lost")
    if unexpected:
        problems.append(f"{len(unexpected)} events delivered that no gate generated")
    if missing:
        problems.append(f"{len(missing)} whitelist acks missing")
    if rejected:
        problems.append(f"{len(rejected)} whitelist pushes rejected")
    if outbox_left:
        problems.append(f"{outbox_left} outbox rows left after the drain")
    counts = [len(v) for v in applied.values()] or [0]
    return {
        "events": {"generated": len(run.generated), "delivered": len(run.delivered & generated), "lost": len(lost),
                   "lost_ids": lost[:20], "duplicates": run.duplicates, "unexpected": len(unexpected),
                   "outbox_left": outbox_left,
                   "latency_ms": summary([x * 1000 for x in run.latencies_s])},
        "whitelist": {"deltas_pushed": len(run.pushes), "acks_expected": sum(
                          1 for g, c in run.gate_community.items() for (pc, _v) in run.pushes if pc == c),
                      "acks_applied": sum(len(v) for v in applied.values()),
                      "acks_per_gate": {"min": min(counts), "max": max(counts)}, "missing": missing[:20],
                      "rejected": rejected[:20], "ack_latency_ms": summary(ack_latency),
                      "per_gate": {g: len(v) for g, v in sorted(applied.items())}},
        "problems": problems, "ok": not problems,
    }


def all_acked(applied: set[tuple[str, int | None]], run: Run) -> bool:
    """Has every gate applied every delta pushed to its community (`applied`: (gate, version) acks)?"""
    return all((g, v) in applied for g, c in run.gate_community.items() for (pc, v) in run.pushes if pc == c)
