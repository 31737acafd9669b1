"""`gate calibrate thermal`: the installer's calibration of the thermal sensor, written to the config file.

Spot sensor (GY-MCU90614): the sensor's own error (offset and ambient slope) against a reference target
of known temperature: a blackbody at its set point, or a surface whose temperature a reference
thermometer gives. Array (GY-MCU90640): the thermal-to-camera map from a warm, bright target (a small
incandescent lamp) seen by both. Points are measured live through the driver (interactively, or one per
run with `--measure`/`--measure-target`, appended to a CSV file) or read from a CSV file (`--reference`);
the fit is shown with its residuals and written to `[temperature.calibration]` unless refused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.calibration import AffinePoint, SpotPoint
    from edge.config import GateConfig

EXAMPLES = """examples:
  gate calibrate thermal -c /etc/edge-gate/gate.toml                  # interactive: prompts for each point
  gate calibrate thermal -c gate.toml --reference pts.csv --measure 35.0   # measure one point, append it
  gate calibrate thermal -c gate.toml --reference pts.csv             # fit the points of pts.csv, write
  gate calibrate thermal -c gate.toml --reference pts.csv --measure-target # array: one target position
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _interactive_spot(cfg: GateConfig, args: argparse.Namespace) -> list[SpotPoint]:
    from edge.calibration import CalibrationError
    from edge.calibration_points import measure_spot, number

    print("Point the sensor at the reference target at the gate's measuring distance. For each point type "
          "the target's true temperature (C) and press Enter; an empty line fits.", file=sys.stderr)
    points: list[SpotPoint] = []
    while True:
        try:
            line = input("reference temperature C (empty: fit): ").strip()
        except EOFError:
            break
        if not line:
            break
        try:
            ref = number(line, "input", "the reference temperature")
            p = measure_spot(cfg, ref, args.samples, args.timeout, args.ambient)
        except CalibrationError as exc:
            print(f"  {exc}", file=sys.stderr)
            continue
        points.append(p)
        print(f"  point {len(points)}: reference {p.reference_c:.2f} C, sensor {p.sensor_c:.2f} C, "
              f"ambient {p.ambient_c:.2f} C", file=sys.stderr)
    return points


def _interactive_array(cfg: GateConfig, args: argparse.Namespace) -> list[AffinePoint]:
    from edge.calibration import CalibrationError
    from edge.calibration_points import measure_target

    print("Hold the warm, bright target (a small lamp) where both the camera and the sensor see it; press "
          "Enter to measure a position, type fit when done (4 or more positions, near the corners).",
          file=sys.stderr)
    points: list[AffinePoint] = []
    while True:
        try:
            line = input("Enter: measure, fit: fit > ").strip().lower()
        except EOFError:
            break
        if line == "fit":
            break
        try:
            p = measure_target(cfg, args.samples, args.timeout)
        except CalibrationError as exc:
            print(f"  {exc}", file=sys.stderr)
            continue
        points.append(p)
        print(f"  position {len(points)}: camera ({p.camera_x:.1f}, {p.camera_y:.1f}) -> thermal "
              f"({p.thermal_col:.2f}, {p.thermal_row:.2f})", file=sys.stderr)
    return points


def _fit_spot(cfg: GateConfig, points: list[SpotPoint], args: argparse.Namespace) -> dict[str, object]:
    from edge.calibration import CalibrationError, fit_spot

    cal = cfg.temperature.calibration
    fit = fit_spot(points, cal.sensor_reference_ambient_c)
    slope = f"ambient slope {fit.ambient_coefficient:+.4f} C/C" if fit.slope_fitted else \
        "ambient slope not fitted (all points at one room temperature; 0)"
    print(f"spot fit over {len(points)} points ({args.reference_kind}): offset {fit.offset_c:+.3f} C at "
          f"{fit.ambient_reference_c:g} C room, {slope}")
    print(f"residual: max {fit.max_c:.3f} C, rms {fit.rms_c:.3f} C (limit {args.max_residual:g} C)")
    if fit.max_c > args.max_residual:
        raise CalibrationError(f"the residual {fit.max_c:.3f} C is above the limit {args.max_residual:g} C: a "
                               "point is off (target not settled, reference value mistyped?); measure again")
    if abs(fit.offset_c) > 5 or abs(fit.ambient_coefficient) > 0.5:
        raise CalibrationError("the sensor's error is beyond what calibration corrects (offset 5 C, slope 0.5 "
                               "C/C): check the sensor, its window and the reference")
    return {"sensor_offset_c": round(fit.offset_c, 3), "sensor_ambient_coefficient": round(fit.ambient_coefficient, 4),
            "spot_reference": args.reference_kind, "spot_calibrated_at": _now(), "spot_points": len(points),
            "spot_residual_max_c": round(fit.max_c, 4), "spot_residual_rms_c": round(fit.rms_c, 4)}


def _fit_array(points: list[AffinePoint], args: argparse.Namespace) -> dict[str, object]:
    from edge.calibration import CalibrationError, fit_affine

    fit = fit_affine(points)
    rows = [[round(v, 6) for v in row] for row in fit.affine]
    print(f"affine fit over {len(points)} positions: {rows}")
    print(f"residual: max {fit.max_px:.3f} px, rms {fit.rms_px:.3f} px (thermal pixels; limit "
          f"{args.max_residual_px:g} px)")
    if fit.max_px > args.max_residual_px:
        raise CalibrationError(f"the residual {fit.max_px:.3f} px is above the limit {args.max_residual_px:g} px: "
                               "a position is off (a second warm or bright object in view?); measure again")
    return {"thermal_affine": rows, "affine_calibrated_at": _now(), "affine_points": len(points),
            "affine_residual_max_px": round(fit.max_px, 4), "affine_residual_rms_px": round(fit.rms_px, 4)}


def cmd_calibrate_thermal(args: argparse.Namespace) -> int:
    from edge.calibration import AffinePoint, CalibrationError, SpotPoint, is_array_sensor
    from edge.calibration_points import ARRAY_COLUMNS, SPOT_COLUMNS, append_row, measure_spot, measure_target, read_rows
    from edge.config import load_config
    from edge.config.calibration_file import write_calibration
    from edge.config.temperature import ThermalCalibration

    if not args.config:
        print("error: give the gate's config file with --config FILE (the calibration is written into it), e.g. "
              "--config /etc/edge-gate/gate.toml", file=sys.stderr)
        return 2
    if args.samples < 1 or args.timeout <= 0:
        print("error: --samples must be 1 or more and --timeout above 0 (e.g. --samples 20 --timeout 10)",
              file=sys.stderr)
        return 2
    if not getattr(args, "verbose", False):  # the driver's retries are summed up in this command's one error line
        logging.getLogger("drivers").setLevel(logging.ERROR)
    cfg = load_config(args.config)
    array = is_array_sensor(cfg.thermal)
    csv_path = Path(args.reference) if args.reference else None
    try:
        if args.measure is not None or args.measure_target:
            if csv_path is None:
                raise CalibrationError("--measure and --measure-target append to a file: add --reference FILE.csv")
            if args.measure_target != array:
                raise CalibrationError("--measure-target is for the 32x24 array, --measure REF_C for a spot sensor; "
                                       f"[thermal] is {cfg.thermal.type}")
            if array:
                t = measure_target(cfg, args.samples, args.timeout)
                values: tuple[float, ...] = (t.camera_x, t.camera_y, t.thermal_col, t.thermal_row)
            else:
                s = measure_spot(cfg, args.measure, args.samples, args.timeout, args.ambient)
                values = (s.reference_c, s.sensor_c, s.ambient_c)
            append_row(csv_path, ARRAY_COLUMNS if array else SPOT_COLUMNS, values)
            print(f"{csv_path}: added {', '.join(f'{v:.2f}' for v in values)}")
            return 0
        if array:
            apoints = [AffinePoint(*r) for r in read_rows(csv_path, ARRAY_COLUMNS)] if csv_path else \
                _interactive_array(cfg, args)
            update = _fit_array(apoints, args)
        else:
            spoints = [SpotPoint(*r) for r in read_rows(csv_path, SPOT_COLUMNS)] if csv_path else \
                _interactive_spot(cfg, args)
            update = _fit_spot(cfg, spoints, args)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: the config file is unchanged")
        return 0
    cal = ThermalCalibration.model_validate({**cfg.temperature.calibration.model_dump(), **update})
    write_calibration(Path(args.config), cal)  # a ConfigError is printed as one line by edge.cli.main
    print(f"wrote [temperature.calibration] to {args.config}; restart the gate to use it")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `calibrate thermal` to the `gate` parser's subcommands."""
    cal = sub.add_parser("calibrate", help="installer calibration of the gate's sensors")
    cal_sub = cal.add_subparsers(dest="calibrate_command", required=True)
    th = cal_sub.add_parser(
        "thermal", help="fit the thermal sensor against a reference and write it to the config",
        description="Spot sensor: fit its offset and ambient slope against a reference target of known "
        "temperature (blackbody or reference thermometer). 32x24 array: fit the camera-to-thermal map from a "
        "warm, bright target seen by both. Stop the gate service first: the command opens the sensor itself.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    th.add_argument("--config", "-c", help="the gate's config file; the result is written into it "
                    "(e.g. --config /etc/edge-gate/gate.toml)")
    th.add_argument("--reference", metavar="FILE.csv", help="points file: fitted when given alone; with "
                    "--measure/--measure-target one measured point is appended to it. Spot columns: "
                    "reference_c,sensor_c,ambient_c; array: camera_x,camera_y,thermal_col,thermal_row "
                    "(e.g. --reference points.csv)")
    th.add_argument("--measure", type=float, metavar="REF_C", help="spot sensor: measure the target now, whose "
                    "true temperature is REF_C, and append the point to --reference (e.g. --measure 35.0)")
    th.add_argument("--measure-target", action="store_true", help="array: find the warm target in the thermal "
                    "and camera frames now and append the position to --reference (e.g. --measure-target)")
    th.add_argument("--reference-kind", choices=("blackbody", "thermometer"), default="blackbody",
                    help="what the reference temperatures come from, recorded with the fit "
                    "(e.g. --reference-kind thermometer)")
    th.add_argument("--ambient", type=float, metavar="C", help="room temperature for a sensor that reports none "
                    "(e.g. --ambient 22.5)")
    th.add_argument("--samples", type=int, default=20, help="readings averaged per point (e.g. --samples 40)")
    th.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each reading "
                    "(e.g. --timeout 5)")
    th.add_argument("--max-residual", type=float, default=0.3, metavar="C", help="refuse a spot fit whose "
                    "largest error exceeds this (e.g. --max-residual 0.2)")
    th.add_argument("--max-residual-px", type=float, default=1.0, metavar="PX", help="refuse an array fit "
                    "whose largest error exceeds this many thermal pixels (e.g. --max-residual-px 0.7)")
    th.add_argument("--dry-run", action="store_true", help="show the fit, do not write the config "
                    "(e.g. --dry-run)")
    th.set_defaults(func=cmd_calibrate_thermal)
