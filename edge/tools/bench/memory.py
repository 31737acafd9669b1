"""`memory`: the gate process as deployed, with a large whitelist: the engine, n residents (one SFace
template each) loaded from its store, a 640x480 video stream, simulated sensor and relay on ptys, the
guards' page; its resident memory while it runs and its peak, its start time and the whitelist's load.

The gate runs in a fresh process (`python -m edge.tools.bench.memory CONFIG SECONDS`, `gate_child`) so
its figures are its own from its start, not this process's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge.tools.bench.common import fill_residents, machine, module_command, random_templates
from edge.tools.procstat import status_mb
from edge.tools.stats import percentile

DEFAULT_SECONDS = 20.0


def bench_memory(persons: int = 100_000, seconds: float = DEFAULT_SECONDS) -> list[str]:
    import cv2

    from edge.config import load_config
    from edge.demo_scene import prepare_demo
    from edge.vision import load_image

    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
        prepare_demo(load_config(root / "base.toml"), root / "scene")
        # a stream, as a deployed camera is: the folder replay would cache every decoded frame in memory
        video = root / "walk.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (640, 480))
        for path in sorted((root / "scene").glob("*.jpg")):
            writer.write(load_image(path))
        writer.release()
        (root / "gate.toml").write_text(
            f'[gate]\ndata_dir = "{root / "data"}"\n[camera]\ntype = "file"\nsource = "{video}"\n'
            f'fps = 25\n[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n[relay]\ntype = "sim"\nkind = "lcus"\n'
            f"[web]\nport = 0\n")
        m = random_templates(persons, rng)
        fill_residents(root / "data" / "gate.db", [f"P{i:07d}" for i in range(persons)], m)
        del m
        # from here on, the child process is what a gate is: measure it from its start
        argv, env = module_command("edge.tools.bench.memory", str(root / "gate.toml"), str(seconds))
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        got = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    return [f"memory: the gate process with {persons} residents (one template each) loaded from its store, "
            f"a 640x480 video stream, sensor, relay and page running {seconds:g} s; {machine()}",
            f"  start (models, store, whitelist, drivers) {float(got['load_s']):.2f} s; the whitelist alone "
            f"({got['persons']} persons, gallery and records) {float(got['whitelist_s']):.2f} s (target <= 2 s); "
            f"decisions {got['decisions']}",
            f"  resident memory while running: median {float(got['rss_median']):.0f} MB, "
            f"max {float(got['rss_max']):.0f} MB; peak (VmHWM, start-up included) {float(got['hwm']):.0f} MB "
            "(target < 400 MB)"]


def gate_child(config: str, seconds: float) -> None:
    """In the fresh process: a Gate on `config` for `seconds`, its RSS sampled every 0.5 s; then the
    whitelist reloaded alone. Prints key=value figures for bench_memory."""
    from edge.config import load_config
    from edge.enroll import store_path
    from edge.gate import Gate
    from edge.lane import Whitelist
    from edge.store import Store

    t0 = time.perf_counter()
    gate = Gate(load_config(Path(config)))
    load_s = time.perf_counter() - t0
    samples: list[float] = []
    stop = threading.Timer(seconds, gate.stop_event.set)
    stop.start()

    def sample() -> None:
        while not gate.stop_event.wait(0.5):
            rss = status_mb("VmRSS")
            if rss is not None:
                samples.append(rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gate.run()
    stop.cancel()
    sampler.join(2)
    steady = samples[len(samples) // 4:] or samples or [float("nan")]
    hwm = status_mb("VmHWM")
    with Store.open(store_path(gate.cfg)) as store:  # after the figures above: the whitelist alone, as a reload
        t1 = time.perf_counter()
        reloaded = Whitelist.load(store, gate.engine.model_id)
        whitelist_s = time.perf_counter() - t1
    print(f"load_s={load_s} whitelist_s={whitelist_s} persons={len(reloaded.persons)} decisions={gate.lane.decisions} "
          f"rss_median={percentile(steady, 50)} rss_max={max(steady)} hwm={hwm if hwm is not None else float('nan')}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m edge.tools.bench.memory GATE_TOML SECONDS (run by bench_memory)")
    gate_child(sys.argv[1], float(sys.argv[2]))
