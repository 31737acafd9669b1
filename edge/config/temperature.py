"""The `[temperature]` section: calibration of the body-temperature estimate and the liveness limits, and
its `[temperature.calibration]` table: what `gate calibrate thermal` measured at this gate (the spot
sensor's own error, the array's thermal-to-camera map), with when and how well."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section

_WHEN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


def _check_affine(value: list[list[float]]) -> list[list[float]]:
    if len(value) != 2 or any(len(row) != 3 for row in value):
        raise ValueError("thermal_affine must be 2 rows of 3 numbers")
    if not all(math.isfinite(v) for row in value for v in row):
        raise ValueError("thermal_affine must be finite")
    if abs(value[0][0] * value[1][1] - value[0][1] * value[1][0]) < 1e-9:
        raise ValueError("thermal_affine is singular")
    return value


class ThermalCalibration(Section):
    """Written by `gate calibrate thermal`; unset values leave the fixed defaults of [temperature] in use."""

    sensor_offset_c: float | None = Field(None, ge=-5, le=5, description="Spot sensor: degrees added to every "
                                          "reading at sensor_reference_ambient_c (the sensor's own error, "
                                          "measured against a reference target; 0 when never calibrated).")
    sensor_ambient_coefficient: float | None = Field(None, ge=-0.5, le=0.5, description="Spot sensor: "
                                                     "degrees added per degree the room is colder than "
                                                     "sensor_reference_ambient_c (subtracted when warmer).")
    sensor_reference_ambient_c: float = Field(24.0, ge=-20, le=50, description="Room temperature the sensor's "
                                              "correction is expressed at.")
    spot_reference: Literal["blackbody", "thermometer"] | None = Field(None, description="What the spot "
                                                                       "sensor was calibrated against.")
    spot_calibrated_at: str | None = Field(None, pattern=_WHEN, description="When (UTC).")
    spot_points: int | None = Field(None, ge=1, description="Reference points the fit used.")
    spot_residual_max_c: float | None = Field(None, ge=0, description="Largest fit error over the points.")
    spot_residual_rms_c: float | None = Field(None, ge=0, description="RMS fit error over the points.")
    thermal_affine: list[list[float]] | None = Field(None, description="Array: the measured 2x3 affine map "
                                                     "from camera pixels to thermal pixel centres; replaces "
                                                     "[temperature] thermal_affine.")
    affine_calibrated_at: str | None = Field(None, pattern=_WHEN, description="When (UTC).")
    affine_points: int | None = Field(None, ge=1, description="Target positions the fit used.")
    affine_residual_max_px: float | None = Field(None, ge=0, description="Largest fit error (thermal pixels).")
    affine_residual_rms_px: float | None = Field(None, ge=0, description="RMS fit error (thermal pixels).")

    @field_validator("thermal_affine")
    @classmethod
    def _affine(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        return None if value is None else _check_affine(value)

    def spot_done(self) -> bool:
        return self.sensor_offset_c is not None

    def array_done(self) -> bool:
        return self.thermal_affine is not None


class TemperatureConfig(Section):
    """Calibration of the temperature estimate (per gate: sensor, mounting, camera)."""

    spot_offset_c: float = Field(2.3, ge=-5, le=10, description="Added to a spot sensor's forehead skin "
                                 "reading to estimate body temperature.")
    canthus_offset_c: float = Field(0.3, ge=-5, le=10, description="Added to the inner-canthus reading of "
                                                                   "the "
                                    "array sensor to estimate body temperature.")
    ambient_reference_c: float = Field(24.0, ge=-20, le=50, description="Room temperature at which the "
                                                                        "offsets "
                                       "were calibrated.")
    ambient_coefficient: float = Field(0.1, ge=0, le=1, description="Degrees added per degree the room is "
                                                                    "colder "
                                       "than the reference (skin cools in a cold room), subtracted when "
                                       "warmer.")
    max_ambient_correction_c: float = Field(1.5, ge=0, le=5, description="Limit of the ambient correction.")
    reference_face_width_px: float = Field(160.0, gt=0, description="Face box width (camera pixels) at the "
                                           "reference distance.")
    reference_distance_m: float = Field(0.5, gt=0, le=5, description="Distance at which the offsets were "
                                        "calibrated.")
    distance_coefficient_c_per_m: float = Field(0.4, ge=0, le=5, description="Degrees added per metre beyond "
                                                "the reference distance (the sensor sees more background).")
    max_distance_m: float = Field(1.2, gt=0, le=10, description="Farther faces get no valid estimate.")
    thermal_affine: list[list[float]] = Field(
        [[0.05, 0.0, 0.0], [0.0, 0.05, 0.0]],
        description="2x3 affine transform from camera pixels (x, y, 1) to thermal pixel centres (col, row); "
                    "the default suits a 640x480 camera aligned with a 32x24 array. Calibrate per gate.")
    canthus_fraction: float = Field(0.25, ge=0.05, le=0.5, description="Inner eye corner position: this "
                                    "fraction of the eye distance from each eye centre towards the other "
                                    "eye.")
    canthus_radius_px: float = Field(1.0, ge=0, le=4, description="Thermal pixels within this radius of each "
                                     "canthus belong to the measured region (the nearest pixel always does).")
    blackbody_enabled: bool = Field(False, description="A blackbody reference is in the array's view.")
    blackbody_c: float = Field(35.0, ge=20, le=50, description="The blackbody's set temperature.")
    blackbody_rect: list[int] = Field([28, 20, 3, 3], description="Blackbody pixels: x, y, width, height "
                                      "(thermal pixels).")
    max_blackbody_correction_c: float = Field(2.0, ge=0, le=10, description="A larger blackbody correction "
                                              "means the reference is blocked or failed: no valid estimate.")
    min_body_c: float = Field(34.0, ge=20, le=40, description="Body estimates below this are not a person's "
                              "(wrong target, hat, glasses): invalid.")
    max_body_c: float = Field(43.0, ge=38, le=60, description="Body estimates above this are invalid.")
    liveness_min_contrast_c: float = Field(4.0, ge=0, le=30, description="A live face is at least this much "
                                           "warmer than the background around it.")
    liveness_min_face_c: float = Field(30.0, ge=0, le=40, description="A live face's skin is at least this "
                                                                      "warm.")

    calibration: ThermalCalibration = Field(default_factory=ThermalCalibration,
                                            description="What `gate calibrate thermal` measured.")

    @field_validator("thermal_affine")
    @classmethod
    def _affine(cls, value: list[list[float]]) -> list[list[float]]:
        return _check_affine(value)

    def affine(self) -> list[list[float]]:
        """The thermal-to-camera map in use: the calibrated one, else the configured default."""
        return self.calibration.thermal_affine or self.thermal_affine

    def sensor_correction(self, ambient_c: float | None) -> float:
        """Degrees to add to a spot reading for the sensor's own error (0 when never calibrated)."""
        cal = self.calibration
        if cal.sensor_offset_c is None:
            return 0.0
        slope = cal.sensor_ambient_coefficient or 0.0
        if ambient_c is None or not math.isfinite(ambient_c):
            return cal.sensor_offset_c
        return cal.sensor_offset_c + slope * (cal.sensor_reference_ambient_c - ambient_c)

    @field_validator("blackbody_rect")
    @classmethod
    def _rect(cls, value: list[int]) -> list[int]:
        if len(value) != 4 or value[0] < 0 or value[1] < 0 or value[2] < 1 or value[3] < 1:
            raise ValueError("blackbody_rect must be x, y, width, height with x, y >= 0 and a size >= 1")
        return value

    @model_validator(mode="after")
    def _body_range(self) -> TemperatureConfig:
        if self.min_body_c >= self.max_body_c:
            raise ValueError("min_body_c must be below max_body_c")
        return self
