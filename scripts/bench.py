#!/usr/bin/env python3
"""Benchmarks (not timed tests): ratios measured side by side in one run, on this machine.

  scripts/bench.py vision   our FaceEngine.analyze vs the plain OpenCV YuNet+SFace loop, alternating
  scripts/bench.py gallery  1:N search and load at 10k / 100k identities, process RSS
  scripts/bench.py all      both
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
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


def bench_gallery(sizes: tuple[int, ...] = (10_000, 100_000), queries: int = 300) -> list[str]:
    out = [f"gallery: 1:N search, 128-d SFace-sized templates, {queries} queries; {machine()}"]
    engine = FaceEngine.default()  # loaded so the RSS figures are those of a gate process
    out.append(f"  face engine loaded ({engine.model_id}): max RSS {rss_mb():.0f} MB")
    rng = np.random.default_rng(0)
    for n in sizes:
        m = rng.standard_normal((n, 128)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        ids = [f"person-{i:07d}" for i in range(n)]
        load_s = _store_load_seconds(ids, m)
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
        load = f"store load {load_s:.2f} s" if load_s is not None else "store load n/a"
        out.append(f"  {n:>7} identities: search p50 {pct(times, 50):.3f} ms p95 {pct(times, 95):.3f} ms "
                   f"(plain float32 matvec p50 {pct(brute, 50):.3f} ms); {load}; max RSS {rss_mb():.0f} MB")
    return out


def _store_load_seconds(ids: list[str], m: np.ndarray) -> float | None:
    """Write the templates to a real SQLite store, then time loading them into a Gallery."""
    try:
        from edge.enroll import load_gallery
        from edge.store import PersonRecord, Store
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "gate.db")
        batch = 5000
        for i in range(0, len(ids), batch):
            chunk = ids[i:i + batch]

            def write(s: Store, chunk: list[str] = chunk, start: int = i) -> None:
                for j, pid in enumerate(chunk):
                    s.upsert_person(PersonRecord(id=pid, name=pid, kind="resident"))
                    s.add_templates(pid, m[start + j:start + j + 1], "sface_2021dec")

            store.apply_in_transaction(write)
        store.close()
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
    grants = [o.latency_ms for o in outcomes if o.event.decision == "grant" and o.latency_ms is not None]
    denies = [o.latency_ms for o in outcomes if o.event.decision == "deny" and o.latency_ms is not None]
    lines = [f"decision: walking sequence at 640x480, {fps:g} fps replay, {seconds:g} s; {machine()}"]
    for label, vals in (("grant (first usable frame -> relay command)", grants),
                        ("deny  (first usable frame -> decision)", denies)):
        if vals:
            arr = np.asarray(vals)
            lines.append(f"  {label}: n={len(arr)} p50 {np.percentile(arr, 50):.0f} ms "
                         f"p95 {np.percentile(arr, 95):.0f} ms max {arr.max():.0f} ms")
    lines.append(f"  camera: {cam.frames} frames, {cam.dropped} dropped (the vision loop kept up when ~0)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["vision", "gallery", "decision", "all"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    lines: list[str] = []
    if args.what in ("vision", "all"):
        lines += bench_vision(args.frames, args.rounds)
    if args.what in ("gallery", "all"):
        lines += bench_gallery()
    if args.what in ("decision", "all"):
        lines += bench_decision()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
