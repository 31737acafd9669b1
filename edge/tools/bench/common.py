"""What several benchmarks share: the one-line machine description each report starts with, and a real
SQLite store filled with residents (one template each) for the gallery and memory benchmarks."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def machine() -> str:
    import cv2

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, OpenCV {cv2.__version__}"


def random_templates(n: int, rng: np.random.Generator, dim: int = 128) -> np.ndarray:
    """n unit-length float32 templates of `dim` (SFace's size): stand-ins for enrolled faces."""
    m = rng.standard_normal((n, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def fill_residents(db: Path, ids: list[str], m: np.ndarray, batch: int = 5000) -> None:
    """Residents with one template each into a real SQLite store, in transactions of `batch`."""
    from edge.store import PersonRecord, Store

    store = Store.open(db)
    try:
        for i in range(0, len(ids), batch):
            chunk = ids[i:i + batch]

            def write(s: Store, chunk: list[str] = chunk, start: int = i) -> None:
                for j, pid in enumerate(chunk):
                    s.upsert_person(PersonRecord(id=pid, name=f"Resident {pid}", kind="resident", unit="B2-1203"))
                    s.add_templates(pid, m[start + j:start + j + 1], "sface_2021dec")

            store.apply_in_transaction(write)
    finally:
        store.close()


def module_command(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run `python -m module args` in a fresh process with this checkout's
    `edge` importable (what `all` and the memory benchmark measure in processes of their own)."""
    import sys

    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return [sys.executable, "-m", module, *args], env
