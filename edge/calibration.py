"""Installer calibration of the thermal sensor: pure fits, no I/O (`gate calibrate thermal` does the I/O).

Spot sensor: each point is a reference target's true temperature (a blackbody's set point, or a reference
thermometer's reading of the target), what the sensor read and the sensor's own ambient reading. The
sensor's error is modelled as `reference = sensor + offset + slope * (ambient_reference - ambient)` and
fitted by least squares; with every point at one room temperature only the offset can be fitted.
Array: each point is one warm target's position in the camera image and in the thermal frame; the 2x3
affine map camera -> thermal is fitted by least squares. Every fit carries its residuals and refuses to
exist with too few points (a fit through exactly as many points as unknowns has no residual to trust).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

MIN_AMBIENT_SPREAD_C = 2.0  # fit the ambient slope only when the points span this much room temperature


def is_array_sensor(thermal: object) -> bool:
    """A thermal config for the 32x24 array (its driver, or the simulator of its kind)."""
    return getattr(thermal, "type", None) == "gy_mcu90640" or getattr(thermal, "kind", None) == "gy_mcu90640"


class CalibrationError(ValueError):
    """A fit that cannot be made or must not be used; the message says what to do."""


@dataclass(frozen=True)
class SpotPoint:
    reference_c: float
    sensor_c: float
    ambient_c: float


@dataclass(frozen=True)
class SpotFit:
    offset_c: float
    ambient_coefficient: float
    ambient_reference_c: float
    slope_fitted: bool  # False: all points at one room temperature, the slope is left at 0
    residuals_c: tuple[float, ...]

    @property
    def max_c(self) -> float:
        return max(abs(r) for r in self.residuals_c)

    @property
    def rms_c(self) -> float:
        return math.sqrt(sum(r * r for r in self.residuals_c) / len(self.residuals_c))


@dataclass(frozen=True)
class AffinePoint:
    camera_x: float
    camera_y: float
    thermal_col: float
    thermal_row: float


@dataclass(frozen=True)
class AffineFit:
    affine: tuple[tuple[float, float, float], tuple[float, float, float]]
    residuals_px: tuple[float, ...]  # distance in thermal pixels between mapped and measured positions

    @property
    def max_px(self) -> float:
        return max(self.residuals_px)

    @property
    def rms_px(self) -> float:
        return math.sqrt(sum(r * r for r in self.residuals_px) / len(self.residuals_px))


def _finite(values: Sequence[float], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise CalibrationError(f"{what}: every value must be a finite number")


def fit_spot(points: Sequence[SpotPoint], ambient_reference_c: float = 24.0) -> SpotFit:
    """The sensor's offset and ambient slope from reference points (least squares)."""
    for p in points:
        _finite((p.reference_c, p.sensor_c, p.ambient_c), "a calibration point")
    ambients = [p.ambient_c for p in points]
    slope_fitted = bool(points) and max(ambients) - min(ambients) >= MIN_AMBIENT_SPREAD_C
    needed = 3 if slope_fitted else 2
    if len(points) < needed:
        raise CalibrationError(
            f"{len(points)} point(s) is too few: measure at least {needed} (at one room temperature at least 2 "
            f"set points fit the offset; 3 points over {MIN_AMBIENT_SPREAD_C:g} C of room temperature also fit "
            "the ambient slope)")
    error = np.array([p.reference_c - p.sensor_c for p in points])
    x = np.array([ambient_reference_c - a for a in ambients])
    design = np.column_stack([np.ones(len(points)), x]) if slope_fitted else np.ones((len(points), 1))
    coef, *_ = np.linalg.lstsq(design, error, rcond=None)
    offset = float(coef[0])
    slope = float(coef[1]) if slope_fitted else 0.0
    residuals = error - (offset + slope * x)
    return SpotFit(offset_c=offset, ambient_coefficient=slope, ambient_reference_c=ambient_reference_c,
                   slope_fitted=slope_fitted, residuals_c=tuple(float(r) for r in residuals))


def fit_affine(points: Sequence[AffinePoint]) -> AffineFit:
    """The 2x3 affine map camera (x, y) -> thermal (col, row) from target positions (least squares)."""
    for p in points:
        _finite((p.camera_x, p.camera_y, p.thermal_col, p.thermal_row), "a target position")
    if len(points) < 4:
        raise CalibrationError(f"{len(points)} target position(s) is too few: measure at least 4, spread over "
                               "the camera's view (not on one line)")
    cam = np.array([[p.camera_x, p.camera_y, 1.0] for p in points])
    therm = np.array([[p.thermal_col, p.thermal_row] for p in points])
    centred = cam[:, :2] - cam[:, :2].mean(axis=0)
    if np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, float(np.abs(centred).max()))) < 2:
        raise CalibrationError("the target positions lie on one line: move the target to corners of the view")
    coef, *_ = np.linalg.lstsq(cam, therm, rcond=None)
    m = coef.T  # (2, 3)
    if abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]) < 1e-9:
        raise CalibrationError("the fitted map is singular: the positions do not match; measure again")
    residuals = np.linalg.norm(cam @ coef - therm, axis=1)
    rows = tuple(tuple(float(v) for v in row) for row in m)
    return AffineFit(affine=(rows[0], rows[1]),  # type: ignore[arg-type]
                     residuals_px=tuple(float(r) for r in residuals))


def _component(mask: NDArray[np.bool_], start: tuple[int, int]) -> NDArray[np.bool_]:
    """The 4-connected region of `mask` containing `start`."""
    out = np.zeros_like(mask)
    stack = [start]
    h, w = mask.shape
    while stack:
        r, c = stack.pop()
        if not (0 <= r < h and 0 <= c < w) or out[r, c] or not mask[r, c]:
            continue
        out[r, c] = True
        stack.extend(((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)))
    return out


def blob_centre(image: ArrayLike, min_contrast: float) -> tuple[float, float]:
    """(col, row) of the hottest or brightest blob: the centroid, weighted by the excess over the
    half-way level between the median and the peak, of the connected region around the peak."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img.mean(axis=2)
    if img.size == 0 or not np.isfinite(img).all():
        raise CalibrationError("the image has no finite values")
    peak_at = np.unravel_index(int(np.argmax(img)), img.shape)
    peak, median = float(img[peak_at]), float(np.median(img))
    if peak - median < min_contrast:
        raise CalibrationError(f"no target: the peak is only {peak - median:.1f} above the background "
                               f"(need {min_contrast:g}); put the warm, bright target in view")
    level = median + 0.5 * (peak - median)
    region = _component(img > level, (int(peak_at[0]), int(peak_at[1])))
    weights = np.where(region, img - level, 0.0)
    rows, cols = np.indices(img.shape)
    total = float(weights.sum())
    return float((weights * cols).sum() / total), float((weights * rows).sum() / total)
