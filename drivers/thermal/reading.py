"""What a thermal sensor delivers and promises: `Reading` (a good reading with its arrival time),
`Sample` (a decoded frame before it has one), `Frame`/`FRAME_SHAPE` (the 24x32 array image),
`ThermalStats`, and the `ThermalSensor` protocol the gate codes against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from drivers.heartbeat import Heartbeat

Frame = NDArray[np.float32]
FRAME_SHAPE = (24, 32)


@dataclass(frozen=True)
class Reading:
    """One good reading: object and ambient temperature (C), arrival time (time.monotonic), array frame."""

    object_c: float
    ambient_c: float  # NaN when the sensor does not report it (plain ASCII sensors)
    t: float
    frame: Frame | None = None

    def as_dict(self, with_frame: bool = True) -> dict[str, object]:
        """JSON-ready: NaN ambient becomes None; the frame a list of 24 rows of 32 values."""
        out: dict[str, object] = {
            "object_c": round(self.object_c, 2),
            "ambient_c": round(self.ambient_c, 2) if math.isfinite(self.ambient_c) else None,
            "t": self.t,
        }
        if with_frame and self.frame is not None:
            out["frame"] = [[round(float(v), 2) for v in row] for row in self.frame]
        return out


@dataclass(frozen=True)
class Sample:
    """A decoded frame, before it gets its arrival time."""

    object_c: float
    ambient_c: float
    frame: Frame | None = None


@dataclass(frozen=True)
class ThermalStats:
    frames_ok: int
    checksum_failures: int
    resyncs: int
    bytes_skipped: int
    implausible: int
    reconnects: int
    connected: bool
    last_error: str | None
    last_good_age_s: float | None  # None before the first good reading
    last_refused: str | None = None  # why the latest implausible frame was not a measurement


class ThermalSensor(Protocol):
    """A thermal sensor: `read()` is the latest good reading (None if none is fresh)."""

    def start(self) -> None: ...

    def read(self) -> Reading | None: ...

    def wait(self, timeout: float, newer_than: float | None = None) -> Reading | None: ...

    @property
    def stats(self) -> ThermalStats: ...

    def close(self) -> None: ...

    @property
    def heartbeat(self) -> Heartbeat: ...
