"""`decision`: the real gate (lane, simulated sensor and relay on ptys) on the demo's walking sequence:
first usable frame -> relay command (grant) or decision (deny), camera frames dropped, peak RSS."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from edge.tools.bench.common import machine
from edge.tools.procstat import peak_rss_mb
from edge.tools.stats import percentile

DEFAULT_SECONDS = 30.0


def bench_decision(seconds: float = DEFAULT_SECONDS, fps: float = 25.0) -> list[str]:
    from edge.config import load_config
    from edge.demo_scene import prepare_demo
    from edge.gate import Gate
    from edge.lane import Outcome

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "gate.toml").write_text(
            f'[gate]\ndata_dir = "{root / "data"}"\n[camera]\ntype = "folder"\nsource = "{root / "scene"}"\n'
            f'fps = {fps}\n[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n[relay]\ntype = "sim"\nkind = "lcus"\n'
            f"[policy]\nanti_passback_s = 0\n")
        cfg = load_config(root / "gate.toml")
        prepare_demo(cfg, root / "scene")
        outcomes: list[Outcome] = []
        gate = Gate(cfg, on_outcome=outcomes.append)
        timer = threading.Timer(seconds, gate.stop_event.set)
        timer.start()
        gate.run()
        timer.cancel()
        cam = gate.camera.health()
    gate_rss = peak_rss_mb()  # this process was the gate: engine, store, drivers (and the page when enabled)
    grants = [o.latency_ms for o in outcomes if o.event.decision == "grant" and o.latency_ms is not None]
    denies = [o.latency_ms for o in outcomes if o.event.decision == "deny" and o.latency_ms is not None]
    lines = [f"decision: walking sequence at 640x480, {fps:g} fps replay, {seconds:g} s; {machine()}"]
    for label, vals in (("grant (first usable frame -> relay command)", grants),
                        ("deny  (first usable frame -> decision)", denies)):
        if vals:
            lines.append(f"  {label}: n={len(vals)} p50 {percentile(vals, 50):.0f} ms "
                         f"p95 {percentile(vals, 95):.0f} ms max {max(vals):.0f} ms (target p95 <= 150 ms)")
    lines.append(f"  camera: {cam.frames} frames, {cam.dropped} dropped (the vision loop kept up when ~0)")
    lines.append(f"  memory: the gate process's peak RSS {gate_rss:.0f} MB (the folder replay keeps every decoded "
                 "frame; a stream: see the memory section)")
    return lines
