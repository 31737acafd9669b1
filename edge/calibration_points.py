"""Calibration points for `gate calibrate thermal`: read from a CSV file, appended to one, or measured
live: a spot sensor's averaged readings of a reference target with its own ambient reading (through the
real driver), or a warm target's position in the averaged thermal frames and in the camera image."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np

from drivers.thermal import Reading, make_thermal
from edge.calibration import AffinePoint, CalibrationError, SpotPoint, blob_centre
from edge.camera import open_source
from edge.config import GateConfig

SPOT_COLUMNS = ("reference_c", "sensor_c", "ambient_c")
ARRAY_COLUMNS = ("camera_x", "camera_y", "thermal_col", "thermal_row")


def number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: {text!r} in {column} is not a number") from None
    if not math.isfinite(value):
        raise CalibrationError(f"{where}: {text!r} in {column} is not a finite number")
    return value


def read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[float, ...]]:
    """The numeric rows of a CSV file with a header naming `columns` (blank and # lines skipped)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    reader = csv.DictReader(lines)
    found = [c.strip() for c in reader.fieldnames or []]
    if any(c not in found for c in columns):
        raise CalibrationError(f"{path}: the first line must name the columns {', '.join(columns)} "
                               f"(found: {', '.join(found) or 'nothing'})")
    reader.fieldnames = found
    rows = []
    for n, row in enumerate(reader, start=2):
        rows.append(tuple(number((row.get(c) or "").strip(), f"{path} row {n}", c) for c in columns))
    return rows


def append_row(path: Path, columns: tuple[str, ...], values: tuple[float, ...]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    try:
        with path.open("a", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(columns)
            w.writerow([f"{v:.4f}" for v in values])
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _sensor_where(cfg: GateConfig) -> str:
    port = getattr(cfg.thermal, "port", None)
    return f"the {cfg.thermal.type} sensor on {port}" if port else f"the {cfg.thermal.type} sensor"


def _readings(cfg: GateConfig, samples: int, timeout: float) -> list[Reading]:
    sensor = make_thermal(cfg.thermal)
    sensor.start()
    try:
        out: list[Reading] = []
        last: float | None = 0.0
        while len(out) < samples:
            reading = sensor.wait(timeout, newer_than=last)
            if reading is None:
                st = sensor.stats
                raise CalibrationError(f"no reading from {_sensor_where(cfg)} within {timeout:g} s (last error: "
                                       f"{st.last_error or st.last_refused or 'none'}): check its wiring and "
                                       "[thermal] port, and that the gate service is stopped")
            last = reading.t
            out.append(reading)
        return out
    finally:
        sensor.close()


def measure_spot(cfg: GateConfig, reference_c: float, samples: int, timeout: float,
                 ambient_c: float | None) -> SpotPoint:
    """One point: `samples` readings of the reference target averaged, with the sensor's own ambient."""
    readings = _readings(cfg, samples, timeout)
    objects = [r.object_c for r in readings]
    spread = max(objects) - min(objects)
    if spread > 1.0:
        raise CalibrationError(f"the readings vary by {spread:.2f} C: hold the sensor steady on the target "
                               "and let it settle, then measure again")
    ambients = [r.ambient_c for r in readings if math.isfinite(r.ambient_c)]
    if ambient_c is None:
        if not ambients:
            raise CalibrationError("this sensor reports no room temperature: give it with --ambient C")
        ambient_c = statistics.fmean(ambients)
    return SpotPoint(reference_c, statistics.fmean(objects), ambient_c)


def measure_target(cfg: GateConfig, samples: int, timeout: float) -> AffinePoint:
    """One target position: the warm blob in the averaged thermal frames, the bright blob in the camera."""
    frames = [r.frame for r in _readings(cfg, samples, timeout) if r.frame is not None]
    if not frames:
        raise CalibrationError(f"{_sensor_where(cfg)} sends no array frames: is [thermal] the 32x24 array?")
    col, row = blob_centre(np.mean(np.stack(frames), axis=0), min_contrast=3.0)
    try:
        source = open_source(cfg.camera)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CalibrationError(f"camera {cfg.camera.type}:{cfg.camera.source}: {exc}") from None
    try:
        image = None
        for _ in range(3):  # let exposure settle; keep the last frame
            frame = source.read()
            image = frame if frame is not None else image
        if image is None:
            raise CalibrationError(f"camera {cfg.camera.type}:{cfg.camera.source} gave no frame")
        x, y = blob_centre(image, min_contrast=60.0)
    finally:
        source.close()
    return AffinePoint(x, y, col, row)
