"""`snapshot`: a signed, chunked whitelist snapshot of n persons with one SFace template each: parse,
verify every chunk's signature, apply in one transaction, then the gallery reload the gate does after it."""

from __future__ import annotations

import base64
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.tools.bench.common import machine, random_templates
from edge.tools.procstat import peak_rss_mb

DEFAULT_SIZES = (10_000, 100_000)


def bench_snapshot(sizes: tuple[int, ...] = DEFAULT_SIZES) -> list[str]:
    from edge.admin.build import build_push
    from edge.enroll import load_gallery
    from edge.protocol.signing import AdminKey
    from edge.store import Store
    from edge.sync.whitelist import WhitelistApplier

    key = AdminKey.generate()
    rng = np.random.default_rng(1)
    out = [f"snapshot: signed chunks of 5,000 persons, one 128-d template each; {machine()}"]
    for n in sizes:
        vecs = random_templates(n, rng).astype("<f4")
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
                   f"({len(gallery)} templates); max RSS {peak_rss_mb():.0f} MB")
    return out
