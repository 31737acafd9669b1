#!/usr/bin/env python3
"""Benchmarks (not timed tests): ratios measured side by side in one run, on this machine.

  scripts/bench.py vision    our FaceEngine.analyze vs the plain OpenCV YuNet+SFace loop, alternating
  scripts/bench.py gallery   1:N search at 10k / 100k / 1M identities vs a plain matvec, store load, RSS
  scripts/bench.py decision  first usable frame -> relay command on the real gate, walking sequence
  scripts/bench.py drain     outbox backlog of 100k events to a local Mosquitto vs a bare paho loop
  scripts/bench.py snapshot  signed whitelist snapshot apply for 10k / 100k persons
  scripts/bench.py memory    the running gate's RSS with 100k residents in its whitelist
  scripts/bench.py all       every one of them, and docs/performance.md written from the results
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.models import DEFAULT_MODELS_DIR, fetch_samples, load_manifest
from edge.vision import FaceEngine, Gallery, load_image


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, OpenCV {cv2.__version__}"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_frames(n: int, seed: int = 3) -> list[np.ndarray]:
    """640x480 frames: real packaged photos' faces placed on a neutral canvas at gate-like sizes."""
    rng = np.random.default_rng(seed)
    samples = fetch_samples(load_manifest().samples["ctu_unknowns"])
    photos = sorted(samples.glob("*.jpg"))
    engine_probe = FaceEngine.default()
    crops = []
    for p in photos[::4]:
        img = load_image(p)
        dets = engine_probe.detect(img)
        if not dets:
            continue
        x, y, w, h = dets[0].bbox
        cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 1.8
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        crop = img[y0:int(min(img.shape[0], cy + side / 2)), x0:int(min(img.shape[1], cx + side / 2))]
        if crop.shape[0] > 40 and crop.shape[1] > 40:
            crops.append(crop)
    frames = []
    for i in range(n):
        canvas = np.full((480, 640, 3), 90 + (i % 5) * 10, np.uint8)
        crop = crops[i % len(crops)]
        side = int(rng.integers(160, 300))
        face = cv2.resize(crop, (side, int(side * crop.shape[0] / crop.shape[1])))[:440]
        x0, y0 = int(rng.integers(0, 640 - side)), int(rng.integers(0, max(1, 480 - face.shape[0])))
        canvas[y0:y0 + face.shape[0], x0:x0 + face.shape[1]] = face
        frames.append(canvas)
    return frames


def bench_vision(frames_n: int = 60, rounds: int = 3) -> list[str]:
    engine = FaceEngine.default()
    cfg = engine.cfg.detector
    det_file = str(DEFAULT_MODELS_DIR / cfg.file)
    rec_file = str(DEFAULT_MODELS_DIR / engine.cfg.embedder.file)
    yn = cv2.FaceDetectorYN.create(det_file, "", (640, 480), cfg.score_threshold, cfg.nms_threshold, 5000)
    sf = cv2.FaceRecognizerSF.create(rec_file, "")
    frames = make_frames(frames_n)

    def opencv_loop(frame: np.ndarray) -> int:
        _, faces = yn.detect(frame)
        if faces is None:
            return 0
        for f in faces:
            sf.feature(sf.alignCrop(frame, f))
        return len(faces)

    for f in frames[:5]:  # warm both
        engine.analyze(f)
        opencv_loop(f)
    ours: list[float] = []
    theirs: list[float] = []
    found_ours = found_theirs = 0
    for _ in range(rounds):
        for f in frames:
            t0 = time.perf_counter()
            found_ours += len(engine.analyze(f))
            t1 = time.perf_counter()
            found_theirs += opencv_loop(f)
            t2 = time.perf_counter()
            ours.append(t1 - t0)
            theirs.append(t2 - t1)
    ratio50 = pct(ours, 50) / pct(theirs, 50)
    ratio95 = pct(ours, 95) / pct(theirs, 95)
    return [
        f"vision: {len(frames)} frames 640x480 x {rounds} rounds, alternating per frame; {machine()}",
        f"  ours   (FaceEngine.analyze)      p50 {pct(ours, 50):6.2f} ms  p95 {pct(ours, 95):6.2f} ms  "
        f"faces {found_ours}",
        f"  opencv (FaceDetectorYN + SF)     p50 {pct(theirs, 50):6.2f} ms  p95 {pct(theirs, 95):6.2f} ms  "
        f"faces {found_theirs}",
        f"  ratio ours/opencv: p50 {ratio50:.2f}x  p95 {ratio95:.2f}x  (target <= 0.8x)",
    ]


def bench_pipeline(rounds: int = 2) -> list[str]:
    """The gate's vision work per frame (the real Lane: detect every frame, track, recognise the nearest
    face until k-of-n agree, then every Nth frame) vs the plain OpenCV loop that detects, aligns, embeds
    and searches every face of every frame; the demo's walking sequence, alternating per frame."""
    from edge.camera import Frame
    from edge.config import load_config
    from edge.demo_scene import prepare_demo
    from edge.lane import Lane, Whitelist
    from edge.store import Store
    from edge.store.writer import StoreWriter

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "gate.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n'
                                        "[policy]\ntemperature_screening = false\nanti_passback_s = 0\n")
        cfg = load_config(root / "gate.toml")
        prepare_demo(cfg, root / "scene")
        frames = [load_image(f) for f in sorted((root / "scene").glob("*.jpg"))]
        engine = FaceEngine(cfg.vision)
        store = Store.open(root / "data" / "gate.db")
        writer = StoreWriter(store)
        whitelist = Whitelist.load(store, engine.model_id)
        det_cfg = cfg.vision.detector
        yn = cv2.FaceDetectorYN.create(str(DEFAULT_MODELS_DIR / det_cfg.file), "", (640, 480),
                                       det_cfg.score_threshold, det_cfg.nms_threshold, 5000)
        sf = cv2.FaceRecognizerSF.create(str(DEFAULT_MODELS_DIR / cfg.vision.embedder.file), "")
        gallery = whitelist.gallery

        def opencv_loop(frame: np.ndarray) -> None:
            _, faces = yn.detect(frame)
            for f in faces if faces is not None else []:
                feat = sf.feature(sf.alignCrop(frame, f)).reshape(-1)
                gallery.match(feat / np.linalg.norm(feat), 0.5, 0.06)

        ours: list[float] = []
        theirs: list[float] = []
        decisions = 0
        for _ in range(rounds):
            lane = Lane(cfg.lane, cfg.policy, cfg.temperature, engine,
                        whitelist, None, None, writer, gate_id="bench")
            for i, image in enumerate(frames):
                t0 = time.perf_counter()
                decisions += len(lane.process(Frame(image=image, seq=i, t=time.monotonic())))
                t1 = time.perf_counter()
                opencv_loop(image)
                t2 = time.perf_counter()
                ours.append(t1 - t0)
                theirs.append(t2 - t1)
        writer.close()
        store.close()
    mean_ratio = float(np.mean(ours) / np.mean(theirs))
    return [f"pipeline: demo walking sequence, {len(frames)} frames 640x480 x {rounds} rounds, alternating; "
            f"{machine()}",
            f"  ours   (Lane: detect, track, recognise until k-of-n) mean {np.mean(ours) * 1000:6.2f} ms  "
            f"p95 {pct(ours, 95):6.2f} ms  decisions {decisions}",
            f"  opencv (detect + embed + search every face)          mean {np.mean(theirs) * 1000:6.2f} ms  "
            f"p95 {pct(theirs, 95):6.2f} ms",
            f"  ratio ours/opencv: mean {mean_ratio:.2f}x  p95 {pct(ours, 95) / pct(theirs, 95):.2f}x"]


def bench_gallery(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), queries: int = 300,
                  store_load_max: int = 100_000) -> list[str]:
    out = [f"gallery: 1:N search, 128-d SFace-sized templates, {queries} queries; {machine()}"]
    engine = FaceEngine.default()  # loaded so the RSS figures are those of a gate process
    out.append(f"  face engine loaded ({engine.model_id}): max RSS {rss_mb():.0f} MB")
    rng = np.random.default_rng(0)
    for n in sizes:
        m = rng.standard_normal((n, 128)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        ids = [f"person-{i:07d}" for i in range(n)]
        load_s = _store_load_seconds(ids, m) if n <= store_load_max else None
        g = Gallery(ids, m, "sface_2021dec")
        times = []
        for q in range(queries):
            e = m[(q * 7919) % n] + 0.8 * rng.standard_normal(128).astype(np.float32) / np.sqrt(128)
            e /= np.linalg.norm(e)
            t0 = time.perf_counter()
            g.match(e, 0.5, 0.06)
            times.append(time.perf_counter() - t0)
        brute = []
        for q in range(min(queries, 100)):
            e = m[(q * 7919) % n]
            t0 = time.perf_counter()
            s = m @ e
            np.argpartition(s, -5)[-5:]
            brute.append(time.perf_counter() - t0)
        load = f"store load {load_s:.2f} s" if load_s is not None else "store load not measured"
        out.append(f"  {n:>7} identities: search p50 {pct(times, 50):.3f} ms p95 {pct(times, 95):.3f} ms "
                   f"(plain float32 matvec p50 {pct(brute, 50):.3f} ms, ratio {pct(times, 50) / pct(brute, 50):.2f}x); "
                   f"{load}; max RSS {rss_mb():.0f} MB")
        del g, m
    return out


def _fill_store(db: Path, ids: list[str], m: np.ndarray, batch: int = 5000) -> None:
    """Residents with one template each into a real SQLite store, in transactions of `batch`."""
    from edge.store import PersonRecord, Store

    store = Store.open(db)
    for i in range(0, len(ids), batch):
        chunk = ids[i:i + batch]

        def write(s: Store, chunk: list[str] = chunk, start: int = i) -> None:
            for j, pid in enumerate(chunk):
                s.upsert_person(PersonRecord(id=pid, name=f"Resident {pid}", kind="resident", unit="B2-1203"))
                s.add_templates(pid, m[start + j:start + j + 1], "sface_2021dec")

        store.apply_in_transaction(write)
    store.close()


def _vm(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_memory(persons: int = 100_000, seconds: float = 20.0) -> list[str]:
    """The gate process as deployed, with a large whitelist: the engine, `persons` residents (one SFace
    template each) loaded from its store, camera, simulated sensor and relay on ptys, the guards' page;
    its resident memory while it runs, and its peak."""
    from edge.config import load_config
    from edge.demo_scene import prepare_demo

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
        m = rng.standard_normal((persons, 128)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        _fill_store(root / "data" / "gate.db", [f"P{i:07d}" for i in range(persons)], m)
        del m
        # from here on, this process is what a gate is: measure it from its start
        proc = subprocess.run([sys.executable, __file__, "_memory_child", str(root / "gate.toml"), str(seconds)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child failed: {proc.stderr[-2000:]}")
        got = dict(line.split("=", 1) for line in proc.stdout.split())
    return [f"memory: the gate process with {persons} residents (one template each) loaded from its store, "
            f"a 640x480 video stream, sensor, relay and page running {seconds:g} s; {machine()}",
            f"  start (models, store, whitelist, drivers) {float(got['load_s']):.2f} s; the whitelist alone "
            f"({got['persons']} persons, gallery and records) {float(got['whitelist_s']):.2f} s (target <= 2 s); "
            f"decisions {got['decisions']}",
            f"  resident memory while running: median {float(got['rss_median']):.0f} MB, "
            f"max {float(got['rss_max']):.0f} MB; peak (VmHWM, start-up included) {float(got['hwm']):.0f} MB "
            "(target < 400 MB)"]


def _memory_child(config: str, seconds: float) -> None:
    """Run in a fresh process by bench_memory: a Gate on `config`, its RSS sampled every 0.5 s."""
    import threading

    from edge.config import load_config
    from edge.gate import Gate

    t0 = time.perf_counter()
    gate = Gate(load_config(Path(config)))
    load_s = time.perf_counter() - t0
    samples: list[float] = []
    stop = threading.Timer(seconds, gate.stop_event.set)
    stop.start()

    def sample() -> None:
        while not gate.stop_event.wait(0.5):
            samples.append(_vm("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gate.run()
    stop.cancel()
    sampler.join(2)
    steady = samples[len(samples) // 4:] or samples
    hwm = _vm("VmHWM")
    from edge.enroll import store_path
    from edge.lane import Whitelist
    from edge.store import Store

    with Store.open(store_path(gate.cfg)) as store:  # after the figures above: the whitelist alone, as a reload
        t1 = time.perf_counter()
        reloaded = Whitelist.load(store, gate.engine.model_id)
        whitelist_s = time.perf_counter() - t1
    print(f"load_s={load_s} whitelist_s={whitelist_s} persons={len(reloaded.persons)} decisions={gate.lane.decisions} "
          f"rss_median={float(np.median(steady))} rss_max={max(steady)} hwm={hwm}")


def _store_load_seconds(ids: list[str], m: np.ndarray) -> float | None:
    """Write the templates to a real SQLite store, then time loading them into a Gallery."""
    from edge.enroll import load_gallery
    from edge.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        _fill_store(Path(tmp) / "gate.db", ids, m)
        t0 = time.perf_counter()
        store = Store.open(Path(tmp) / "gate.db")
        load_gallery(store, "sface_2021dec")
        elapsed = time.perf_counter() - t0
        store.close()
    return elapsed


def bench_decision(seconds: float = 30.0, fps: float = 25.0) -> list[str]:
    """The real gate (lane, simulated sensor and relay on ptys) on the demo's walking sequence."""
    import threading

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
    gate_rss = rss_mb()  # this process was the gate: engine, store, drivers (and the page when enabled)
    grants = [o.latency_ms for o in outcomes if o.event.decision == "grant" and o.latency_ms is not None]
    denies = [o.latency_ms for o in outcomes if o.event.decision == "deny" and o.latency_ms is not None]
    lines = [f"decision: walking sequence at 640x480, {fps:g} fps replay, {seconds:g} s; {machine()}"]
    for label, vals in (("grant (first usable frame -> relay command)", grants),
                        ("deny  (first usable frame -> decision)", denies)):
        if vals:
            arr = np.asarray(vals)
            lines.append(f"  {label}: n={len(arr)} p50 {np.percentile(arr, 50):.0f} ms "
                         f"p95 {np.percentile(arr, 95):.0f} ms max {arr.max():.0f} ms (target p95 <= 150 ms)")
    lines.append(f"  camera: {cam.frames} frames, {cam.dropped} dropped (the vision loop kept up when ~0)")
    lines.append(f"  memory: the gate process's peak RSS {gate_rss:.0f} MB (the folder replay keeps every decoded "
                 "frame; a stream: see the memory section)")
    return lines


def bench_drain(n: int = 100_000, max_inflight: int = 20) -> list[str]:
    """The gate's outbox drainer (SQLite -> QoS 1 -> PUBACK -> delete) vs a bare paho QoS 1 publish loop
    with the same in-flight window, to the same local Mosquitto, one after the other in one run."""
    from edge.tools.broker import Mosquitto
    from edge.tools.broker import bench_drain as drain_backlog

    ours = drain_backlog(n, max_inflight=max_inflight)
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker:
        bare = _bare_paho_rate(broker.port, n, max_inflight)
    return [f"drain: {n} events, QoS 1, {max_inflight} in flight, local Mosquitto; {machine()}",
            f"  outbox drainer (store, PUBACK, delete): {ours.rate:8.0f} events/s (target >= 1000)",
            f"  bare paho publish loop (no store):      {bare:8.0f} events/s",
            f"  ratio drainer/bare: {ours.rate / bare:.2f}x"]


def _bare_paho_rate(port: int, n: int, max_inflight: int) -> float:
    import json
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    window = threading.Semaphore(max_inflight)  # the same in-flight window as the drainer keeps
    done = threading.Semaphore(0)
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(max_inflight)

    def on_publish(*_args: object) -> None:
        window.release()
        done.release()

    client.on_publish = on_publish
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(30):  # publishing before CONNACK loses paho's on_publish for some messages
        raise RuntimeError("bare paho client: no CONNACK")
    payload = json.dumps({"schema": "edge-gate/event/1", "event_id": "0" * 26, "gate": "bench",
                          "decision": "deny", "reasons": [{"code": "unknown_face"}]})
    t0 = time.perf_counter()
    deadline = time.monotonic() + 600
    for i in range(n):  # at most max_inflight unacknowledged: paho's own queue of 100,000 loses PUBACK callbacks
        if not window.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"bare paho client: stuck after {i} of {n} publishes")
        client.publish("bench/bare/events", payload.replace("0" * 26, f"{i:026d}"), qos=1)
    for acked in range(n):
        if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"bare paho client: only {acked} of {n} PUBACKs in 600 s")
    seconds = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return n / seconds


def bench_snapshot(sizes: tuple[int, ...] = (10_000, 100_000)) -> list[str]:
    """A signed, chunked whitelist snapshot of n persons with one SFace template each: parse, verify every
    chunk's signature, apply in one transaction, then the gallery reload the gate does after it."""
    import base64

    from edge.admin.build import build_push
    from edge.enroll import load_gallery
    from edge.protocol.signing import AdminKey
    from edge.store import Store
    from edge.sync.whitelist import WhitelistApplier

    key = AdminKey.generate()
    rng = np.random.default_rng(1)
    out = [f"snapshot: signed chunks of 5,000 persons, one 128-d template each; {machine()}"]
    for n in sizes:
        vecs = rng.standard_normal((n, 128)).astype("<f4")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        entries = [{"id": f"P{i:07d}", "name": f"Resident {i}",
                    "templates": {"model_id": "sface_2021dec",
                                  "embeddings": [base64.b64encode(vecs[i].tobytes()).decode()]}} for i in range(n)]
        chunks = build_push(key, "bench", "snapshot", entries, [], version=1)
        size_mb = sum(len(c) for c in chunks) / 1e6
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "gate.db")
            applier = WhitelistApplier(store, None, "sface_2021dec", [key.public], community="bench",
                                       gate_id="bench-gate", max_snapshot_persons=max(sizes))
            t0 = time.perf_counter()
            ack = None
            for raw in chunks:
                ack = applier.handle(raw) or ack
            t1 = time.perf_counter()
            gallery = load_gallery(store, "sface_2021dec")
            t2 = time.perf_counter()
            store.close()
        if ack is None or ack.get("status") != "applied":
            raise RuntimeError(f"snapshot of {n} not applied: {ack}")
        out.append(f"  {n:>7} persons ({len(chunks)} chunks, {size_mb:.0f} MB JSON): verify + apply "
                   f"{t1 - t0:.1f} s ({n / (t1 - t0):.0f} persons/s), gallery reload {t2 - t1:.2f} s "
                   f"({len(gallery)} templates); max RSS {rss_mb():.0f} MB")
    return out


SECTIONS = {"vision": "Face engine vs the plain OpenCV loop",
            "decision": "Decision latency on the real gate",
            "gallery": "1:N search",
            "drain": "Outbox drain",
            "snapshot": "Whitelist snapshot apply",
            "memory": "Memory of a gate with 100,000 residents"}


def write_report(results: dict[str, list[str]], path: Path) -> None:
    """docs/performance.md from one `all` run: the machine, then each benchmark's own lines."""
    import datetime

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = ["# edge-gate performance", "",
             "Written by `scripts/bench.py all` (do not edit by hand; run it again). Every ratio was measured",
             "side by side in the same run on the same machine; absolute times are this machine's only.", "",
             f"- date: {datetime.date.today().isoformat()}",
             f"- machine: {cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM; {machine()}",
             f"- onnxruntime {_version('onnxruntime')}, numpy {np.__version__}, SQLite {_sqlite_version()}", ""]
    for key, title in SECTIONS.items():
        if key in results:
            parts += [f"## {title}", "", "```", *results[key], "```", ""]
    path.write_text("\n".join(parts))


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main() -> int:
    if sys.argv[1:2] == ["_memory_child"]:
        _memory_child(sys.argv[2], float(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=[*SECTIONS, "all"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report", default=str(Path(__file__).resolve().parent.parent / "docs" / "performance.md"),
                    help="where `all` writes its report")
    args = ap.parse_args()
    runs: dict[str, Callable[[], list[str]]] = {
        "vision": lambda: bench_vision(args.frames, args.rounds) + bench_pipeline(), "decision": bench_decision,
        "gallery": bench_gallery, "drain": bench_drain, "snapshot": bench_snapshot, "memory": bench_memory}
    results: dict[str, list[str]] = {}
    for key, run in runs.items():
        if args.what == key:
            results[key] = run()
        elif args.what == "all":  # each in a process of its own: its max RSS is its own, not the largest so far
            proc = subprocess.run([sys.executable, __file__, key, "--frames", str(args.frames),
                                   "--rounds", str(args.rounds)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"bench {key} failed (exit {proc.returncode})")
            results[key] = proc.stdout.splitlines()
        else:
            continue
        print("\n".join(results[key]), flush=True)
    if args.what == "all":
        write_report(results, Path(args.report))
        print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
