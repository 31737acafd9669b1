"""`gallery`: 1:N search in our Gallery vs a plain float32 matvec + top-5 over the same templates, per
gallery size, in one run; how long loading that many templates from a real SQLite store takes; max RSS."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from edge.tools.bench.common import fill_residents, machine, random_templates
from edge.tools.procstat import peak_rss_mb
from edge.tools.stats import percentile_ms
from edge.vision import FaceEngine, Gallery

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


def bench_gallery(sizes: tuple[int, ...] = DEFAULT_SIZES, queries: int = 300,
                  store_load_max: int = 100_000) -> list[str]:
    out = [f"gallery: 1:N search, 128-d SFace-sized templates, {queries} queries; {machine()}"]
    engine = FaceEngine.default()  # loaded so the RSS figures are those of a gate process
    out.append(f"  face engine loaded ({engine.model_id}): max RSS {peak_rss_mb():.0f} MB")
    rng = np.random.default_rng(0)
    for n in sizes:
        m = random_templates(n, rng)
        ids = [f"person-{i:07d}" for i in range(n)]
        load_s = store_load_seconds(ids, m) if n <= store_load_max else None
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
            np.argpartition(s, -min(5, n))[-5:]
            brute.append(time.perf_counter() - t0)
        load = f"store load {load_s:.2f} s" if load_s is not None else "store load not measured"
        ratio = percentile_ms(times, 50) / percentile_ms(brute, 50)
        out.append(f"  {n:>7} identities: search p50 {percentile_ms(times, 50):.3f} ms "
                   f"p95 {percentile_ms(times, 95):.3f} ms "
                   f"(plain float32 matvec p50 {percentile_ms(brute, 50):.3f} ms, ratio {ratio:.2f}x); "
                   f"{load}; max RSS {peak_rss_mb():.0f} MB")
        del g, m
    return out


def store_load_seconds(ids: list[str], m: np.ndarray) -> float:
    """Write the templates to a real SQLite store, then time loading them into a Gallery."""
    from edge.enroll import load_gallery
    from edge.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        fill_residents(Path(tmp) / "gate.db", ids, m)
        t0 = time.perf_counter()
        store = Store.open(Path(tmp) / "gate.db")
        load_gallery(store, "sface_2021dec")
        elapsed = time.perf_counter() - t0
        store.close()
    return elapsed
