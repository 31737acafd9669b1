"""Body temperature from thermal readings: pure functions, no I/O.

Spot sensors measure forehead skin: body = skin + offset + ambient and distance corrections, after the
sensor's own error measured at installation (`[temperature.calibration]`, `gate calibrate thermal`). Array
sensors are read where the standards measure (IEC 80601-2-59, ISO/TR 13154): the inner eye corners
(canthi), located from the face's eye landmarks mapped into thermal pixels through a calibrated 2x3
affine transform; never simply the warmest pixel of the frame. A blackbody reference of known
temperature in view corrects the array's drift. Every estimate carries the inputs it was made from.
The array also answers "is this a warm face at all?" (liveness): a photo or a phone screen is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge.config.temperature import TemperatureConfig

Pixel = tuple[int, int]  # (row, col) in the thermal frame


@dataclass(frozen=True)
class TemperatureEstimate:
    """A body temperature estimate and everything it was computed from."""

    body_c: float
    raw_c: float  # what the sensor said for the measured region, before any correction
    source: Literal["spot", "array"]
    offset_c: float
    ambient_c: float | None
    ambient_correction_c: float
    face_width_px: float | None
    distance_m: float | None
    distance_correction_c: float
    blackbody_correction_c: float | None
    region: tuple[Pixel, ...]  # thermal pixels measured (array only)
    valid: bool
    reason: str | None = None
    sensor_correction_c: float = 0.0  # the calibrated sensor error removed (spot only)


@dataclass(frozen=True)
class Liveness:
    """Is the face warm against its background? (`reason` says why not.)"""

    live: bool
    face_c: float | None
    background_c: float | None
    contrast_c: float | None
    reason: str | None = None


def ambient_correction(ambient_c: float | None, cfg: TemperatureConfig) -> float:
    """Degrees to add for the room temperature (0 when the sensor reports none)."""
    if ambient_c is None or not math.isfinite(ambient_c):
        return 0.0
    raw = cfg.ambient_coefficient * (cfg.ambient_reference_c - ambient_c)
    return float(np.clip(raw, -cfg.max_ambient_correction_c, cfg.max_ambient_correction_c))


def distance_from_face(face_width_px: float, cfg: TemperatureConfig) -> float:
    """Distance (m) of a face from its box width: inversely proportional, calibrated at the reference."""
    if not face_width_px > 0:
        return math.inf
    return cfg.reference_distance_m * cfg.reference_face_width_px / face_width_px


def _finish(raw_c: float, source: Literal["spot", "array"], offset_c: float, ambient_c: float | None,
            face_width_px: float | None, cfg: TemperatureConfig, blackbody_c: float | None,
            region: tuple[Pixel, ...], reason: str | None, sensor_c: float = 0.0) -> TemperatureEstimate:
    amb = ambient_correction(ambient_c, cfg)
    distance = distance_from_face(face_width_px, cfg) if face_width_px is not None else None
    dist_corr = 0.0
    if distance is not None and math.isfinite(distance):
        dist_corr = cfg.distance_coefficient_c_per_m * (distance - cfg.reference_distance_m)
    body = raw_c + sensor_c + (blackbody_c or 0.0) + offset_c + amb + dist_corr
    if reason is None and not math.isfinite(raw_c):
        reason = "no reading"
    if reason is None and distance is not None and distance > cfg.max_distance_m:
        reason = f"face too far ({distance:.2f} m > {cfg.max_distance_m} m)"
    if reason is None and not cfg.min_body_c <= body <= cfg.max_body_c:
        reason = f"estimate {body:.2f} C outside {cfg.min_body_c}..{cfg.max_body_c} C (not skin?)"
    return TemperatureEstimate(
        body_c=round(body, 2), raw_c=raw_c, source=source, offset_c=offset_c,
        ambient_c=ambient_c if ambient_c is not None and math.isfinite(ambient_c) else None,
        ambient_correction_c=round(amb, 3), face_width_px=face_width_px, distance_m=distance,
        distance_correction_c=round(dist_corr, 3), blackbody_correction_c=blackbody_c, region=region,
        valid=reason is None, reason=reason, sensor_correction_c=round(sensor_c, 3))


def estimate_spot(object_c: float, ambient_c: float | None, face_width_px: float | None,
                  cfg: TemperatureConfig) -> TemperatureEstimate:
    """Body temperature from a spot sensor's skin reading (face width in camera pixels, if known)."""
    return _finish(object_c, "spot", cfg.spot_offset_c, ambient_c, face_width_px, cfg, None, (), None,
                   cfg.sensor_correction(ambient_c))


def map_points(points: ArrayLike, affine: Sequence[Sequence[float]]) -> NDArray[np.float64]:
    """Camera pixel points (N, 2) as thermal pixel-centre coordinates (N, 2) = (col, row)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(affine, dtype=np.float64)
    result: NDArray[np.float64] = pts @ m[:, :2].T + m[:, 2]
    return result


def canthus_points(landmarks: ArrayLike, cfg: TemperatureConfig) -> NDArray[np.float64]:
    """The two inner eye corners (camera pixels) from 5-point landmarks (the first two are the eyes)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    a, b = lm[0], lm[1]
    f = cfg.canthus_fraction
    return np.stack([a + f * (b - a), b + f * (a - b)])


def _disc(center: NDArray[np.float64], radius: float, shape: tuple[int, int]) -> set[Pixel]:
    col, row = float(center[0]), float(center[1])
    out: set[Pixel] = set()
    nearest = (round(row), round(col))
    if 0 <= nearest[0] < shape[0] and 0 <= nearest[1] < shape[1]:
        out.add(nearest)
    r = math.ceil(radius)
    for rr in range(nearest[0] - r, nearest[0] + r + 1):
        for cc in range(nearest[1] - r, nearest[1] + r + 1):
            if 0 <= rr < shape[0] and 0 <= cc < shape[1] and (rr - row) ** 2 + (cc - col) ** 2 <= radius**2:
                out.add((rr, cc))
    return out


def canthus_region(landmarks: ArrayLike, cfg: TemperatureConfig, shape: tuple[int, int]) -> tuple[Pixel, ...]:
    """Thermal pixels (row, col) around both inner canthi; empty if they fall outside the frame."""
    centres = map_points(canthus_points(landmarks, cfg), cfg.affine())
    pixels: set[Pixel] = set()
    for centre in centres:
        pixels |= _disc(centre, cfg.canthus_radius_px, shape)
    return tuple(sorted(pixels))


def face_rect(bbox: Sequence[float], cfg: TemperatureConfig,
              shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The face box (camera x, y, w, h) in thermal pixels as (row0, row1, col0, col1), end exclusive."""
    x, y, w, h = (float(v) for v in bbox)
    corners = map_points([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], cfg.affine())
    col0 = max(0, math.ceil(float(corners[:, 0].min()) - 0.5))
    col1 = min(shape[1], math.floor(float(corners[:, 0].max()) + 0.5))
    row0 = max(0, math.ceil(float(corners[:, 1].min()) - 0.5))
    row1 = min(shape[0], math.floor(float(corners[:, 1].max()) + 0.5))
    if col1 <= col0 or row1 <= row0:
        return None
    return row0, row1, col0, col1


def blackbody_correction(frame: ArrayLike, cfg: TemperatureConfig) -> tuple[float | None, str | None]:
    """(correction to add, None) from the blackbody region, or (None, why not). (None, None) if disabled."""
    if not cfg.blackbody_enabled:
        return None, None
    img = np.asarray(frame, dtype=np.float64)
    x, y, w, h = cfg.blackbody_rect
    patch = img[y:y + h, x:x + w]
    if patch.size == 0 or not np.isfinite(patch).all():
        return None, "blackbody region outside the frame"
    measured = float(np.median(patch))
    correction = cfg.blackbody_c - measured
    if abs(correction) > cfg.max_blackbody_correction_c:
        return None, (f"blackbody reads {measured:.2f} C, expected {cfg.blackbody_c:.2f} C "
                      "(blocked or failed?)")
    return round(correction, 3), None


def estimate_array(frame: ArrayLike, bbox: Sequence[float], landmarks: ArrayLike, cfg: TemperatureConfig,
                   ambient_c: float | None = None) -> TemperatureEstimate:
    """Body temperature from an array frame at the inner canthi of the face (camera bbox and landmarks)."""
    img = np.asarray(frame, dtype=np.float64)
    shape = (int(img.shape[0]), int(img.shape[1]))
    face_width = float(bbox[2])
    region = canthus_region(landmarks, cfg, shape)
    bb, bb_reason = blackbody_correction(img, cfg)
    if not region:
        return _finish(math.nan, "array", cfg.canthus_offset_c, ambient_c, face_width, cfg, bb, region,
                       "the eyes fall outside the thermal frame")
    values = np.array([img[r, c] for r, c in region])
    if not np.isfinite(values).all():
        return _finish(math.nan, "array", cfg.canthus_offset_c, ambient_c, face_width, cfg, bb, region,
                       "no finite pixel at the eyes")
    raw = float(values.max())  # the hottest point of the canthus region, as the standards specify
    return _finish(raw, "array", cfg.canthus_offset_c, ambient_c, face_width, cfg, bb, region, bb_reason)


def check_liveness(frame: ArrayLike, bbox: Sequence[float], cfg: TemperatureConfig) -> Liveness:
    """A warm face against a cooler background, or not (printed photo, phone screen, mask on a stick)."""
    img = np.asarray(frame, dtype=np.float64)
    shape = (int(img.shape[0]), int(img.shape[1]))
    rect = face_rect(bbox, cfg, shape)
    if rect is None:
        return Liveness(False, None, None, None, "face outside the thermal frame")
    row0, row1, col0, col1 = rect
    face = img[row0:row1, col0:col1]
    # the background: a ring around the face box, one box-half wide on each side
    dr, dc = max(1, (row1 - row0) // 2), max(1, (col1 - col0) // 2)
    outer = np.zeros(shape, dtype=bool)
    outer[max(0, row0 - dr):row1 + dr, max(0, col0 - dc):col1 + dc] = True
    outer[row0:row1, col0:col1] = False
    background = img[outer]
    if face.size == 0 or background.size < 4:
        return Liveness(False, None, None, None, "not enough background around the face")
    face_c = float(np.percentile(face, 75))
    background_c = float(np.median(background))
    contrast = face_c - background_c
    if face_c < cfg.liveness_min_face_c:
        return Liveness(False, face_c, background_c, contrast, f"face region only {face_c:.1f} C")
    if contrast < cfg.liveness_min_contrast_c:
        return Liveness(False, face_c, background_c, contrast,
                        f"face only {contrast:.1f} C warmer than its background")
    return Liveness(True, face_c, background_c, contrast)
