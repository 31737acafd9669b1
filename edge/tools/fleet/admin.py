"""The admin side of a fleet run: signed whitelist deltas (new residents with one random template each,
an old one deleted) published to every community every few seconds while the gates generate."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np

from edge.admin.build import build_push
from edge.admin.client import AdminClient
from edge.protocol.messages import PersonEntry
from edge.protocol.signing import AdminKey

JsonDict = dict[str, Any]
EMBEDDING_DIM = 128  # SFace


def delta_entries(version: int, rng: np.random.Generator, model_id: str, per_delta: int = 4) -> list[JsonDict]:
    """The persons a delta upserts: new residents, each with one (random, normalised) template."""
    out = []
    for k in range(per_delta):
        v = rng.standard_normal(EMBEDDING_DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        entry = {"id": f"R{version:05d}-{k}", "name": f"Resident {version}-{k}", "unit": f"{version % 30}-{k}01",
                 "templates": {"model_id": model_id, "embeddings": [base64.b64encode(v.astype("<f4").tobytes())
                                                                    .decode("ascii")]}}
        PersonEntry.model_validate(entry)
        out.append(entry)
    return out


class DeltaPusher:
    """Publishes delta `version` 1, 2, ... to every community at start + k * every while the run lasts;
    `pushes` records when each (community, version) went out, for the ack latencies."""

    def __init__(self, admin: AdminClient, key: AdminKey, prefix: str, communities: list[str], model_id: str,
                 seed: int = 7) -> None:
        self.admin, self.key, self.prefix = admin, key, prefix
        self.communities, self.model_id = communities, model_id
        self.rng = np.random.default_rng(seed)
        self.pushes: dict[tuple[str, int], float] = {}

    def run(self, start_wall: float, seconds: float, every: float) -> dict[tuple[str, int], float]:
        """Push until start_wall + seconds (wall clock; `every` <= 0: none); returns `pushes`."""
        version = 0
        while every > 0 and (next_at := start_wall + (version + 1) * every) < start_wall + seconds:
            time.sleep(max(0.0, next_at - time.time()))
            version += 1
            entries = delta_entries(version, self.rng, self.model_id)
            deletes = [f"R{version - 2:05d}-0"] if version > 2 else []
            for community in self.communities:
                payload = build_push(self.key, community, "delta", entries, deletes, version=version)[0]
                self.admin.publish(f"{self.prefix}/{community}/whitelist/delta", payload)
                self.pushes[(community, version)] = time.time()
        return self.pushes
