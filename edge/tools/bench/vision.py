"""`vision`: our FaceEngine.analyze vs the plain OpenCV YuNet + SFace loop on the same frames, alternating
per frame; then the gate's real Lane on the demo's walking sequence vs the OpenCV loop that detects,
embeds and searches every face of every frame. Ratios of the two, measured side by side."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.models import DEFAULT_MODELS_DIR, fetch_samples, load_manifest
from edge.tools.bench.common import machine
from edge.tools.stats import mean, percentile_ms
from edge.vision import FaceEngine, load_image


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
    if not crops:
        raise RuntimeError(f"no usable face in the sample photos under {samples}")
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
    ratio50 = percentile_ms(ours, 50) / percentile_ms(theirs, 50)
    ratio95 = percentile_ms(ours, 95) / percentile_ms(theirs, 95)
    return [
        f"vision: {len(frames)} frames 640x480 x {rounds} rounds, alternating per frame; {machine()}",
        f"  ours   (FaceEngine.analyze)      p50 {percentile_ms(ours, 50):6.2f} ms  "
        f"p95 {percentile_ms(ours, 95):6.2f} ms  faces {found_ours}",
        f"  opencv (FaceDetectorYN + SF)     p50 {percentile_ms(theirs, 50):6.2f} ms  "
        f"p95 {percentile_ms(theirs, 95):6.2f} ms  faces {found_theirs}",
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
    mean_ratio = mean(ours) / mean(theirs)
    return [f"pipeline: demo walking sequence, {len(frames)} frames 640x480 x {rounds} rounds, alternating; "
            f"{machine()}",
            f"  ours   (Lane: detect, track, recognise until k-of-n) mean {mean(ours) * 1000:6.2f} ms  "
            f"p95 {percentile_ms(ours, 95):6.2f} ms  decisions {decisions}",
            f"  opencv (detect + embed + search every face)          mean {mean(theirs) * 1000:6.2f} ms  "
            f"p95 {percentile_ms(theirs, 95):6.2f} ms",
            f"  ratio ours/opencv: mean {mean_ratio:.2f}x  "
            f"p95 {percentile_ms(ours, 95) / percentile_ms(theirs, 95):.2f}x"]
