"""`gate selftest`: is this box wired right? Each part is opened for real and asked for an answer.

Run it with the service stopped: it opens the camera, the sensor's and the relay's serial ports
itself (and forces the relay off). Every check has a timeout, so a hung device fails instead of hanging.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.relay import RelayError, make_relay
from drivers.thermal import make_thermal
from edge.calibration import is_array_sensor
from edge.camera import open_source
from edge.config import GateConfig
from edge.config.mqtt import MqttConfig
from edge.enroll import store_path
from edge.filemodes import fix_command, open_to_others
from edge.models import DEFAULT_MODELS_DIR, load_manifest, verify
from edge.store import Store, StoreError

log = logging.getLogger(__name__)

OBJECT_RANGE_C = (20.0, 45.0)  # a face, or the room when nobody stands there
AMBIENT_RANGE_C = (-20.0, 60.0)
EARLIEST_YEAR = 2024
LATEST_YEAR = 2099


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but the installer should act (the detail says how)


@dataclass(frozen=True)
class Limits:
    camera_timeout_s: float = 10.0
    camera_frames: int = 3
    thermal_timeout_s: float = 8.0
    relay_timeout_s: float = 10.0
    broker_timeout_s: float = 10.0
    min_free_mb: float = 200.0


def _in_thread(fn: Callable[[], str], timeout: float, what: str) -> str:
    """Run `fn` on a daemon thread; its result, or raise TimeoutError when it does not return in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, name=f"selftest-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return str(box["result"])


# -- the checks -------------------------------------------------------------------------------------

def check_models(cfg: GateConfig) -> CheckResult:
    models_dir = cfg.vision.models_dir
    manifest_path = models_dir / "manifest.toml"
    manifest = load_manifest(manifest_path if manifest_path.is_file() else DEFAULT_MODELS_DIR / "manifest.toml")
    problems, done = [], []
    for part in (cfg.vision.detector, cfg.vision.embedder):
        spec = manifest.by_file(part.file)
        expected = spec.sha256 if spec is not None else part.sha256
        path = models_dir / part.file
        if expected is None:
            problem = None if path.is_file() else f"{part.file} is missing"
            done.append(f"{part.file} (no known hash)")
        else:
            problem = verify(path, expected)
            done.append(part.file)
        if problem:
            problems.append(problem)
    if problems:
        return CheckResult("models", False, "; ".join(problems) + f" (in {models_dir}; run `gate models fetch`)")
    return CheckResult("models", True, "sha256 ok: " + ", ".join(done))


def check_camera(cfg: GateConfig, limits: Limits) -> CheckResult:
    where = f"{cfg.camera.type}:{cfg.camera.source}"

    def grab() -> str:
        source = open_source(cfg.camera)
        try:
            shape: tuple[int, ...] = ()
            for _ in range(limits.camera_frames):
                image = source.read()
                if image is None:
                    raise OSError("opened, but gave no frame")
                shape = image.shape
            return f"{where}: {limits.camera_frames} frames {shape[1]}x{shape[0]}"
        finally:
            source.close()

    try:
        return CheckResult("camera", True, _in_thread(grab, limits.camera_timeout_s, "camera"))
    except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
        return CheckResult("camera", False, f"{where}: {exc}")


def _thermal_port(cfg: GateConfig) -> str:
    port = getattr(cfg.thermal, "port", None)
    return f"{cfg.thermal.type} on {port}" if port else f"{cfg.thermal.type} (simulated)"


def check_thermal(cfg: GateConfig, limits: Limits) -> CheckResult:
    where = _thermal_port(cfg)
    if not cfg.policy.temperature_screening:
        return CheckResult("thermal", True, "skipped: temperature screening is off ([policy])")
    sensor = make_thermal(cfg.thermal)
    try:
        sensor.start()
        reading = sensor.wait(limits.thermal_timeout_s, newer_than=0.0)
        stats = sensor.stats
    except (OSError, RuntimeError, ValueError) as exc:
        return CheckResult("thermal", False, f"{where}: {exc}")
    finally:
        sensor.close()
    if reading is None:
        garbled = stats.checksum_failures + stats.bytes_skipped + stats.implausible
        if stats.last_error:
            why = stats.last_error
        elif not stats.connected:
            why = "no data: the port did not open"
        elif garbled:
            why = (f"bytes arrive but no valid frame: {stats.checksum_failures} checksum failures, "
                   f"{stats.bytes_skipped} bytes skipped, {stats.implausible} implausible (wrong type or baud?)")
        else:
            why = "no data: the port is open but the module sends nothing (wiring, power, baud rate?)"
        return CheckResult("thermal", False, f"{where}: no reading within {limits.thermal_timeout_s:g} s ({why})")
    obj, amb = reading.object_c, reading.ambient_c
    lo, hi = OBJECT_RANGE_C
    if not lo <= obj <= hi:
        return CheckResult("thermal", False, f"{where}: implausible object temperature {obj:.1f} C "
                                             f"(expected {lo:g}..{hi:g})")
    alo, ahi = AMBIENT_RANGE_C
    if math.isfinite(amb) and not alo <= amb <= ahi:
        return CheckResult("thermal", False, f"{where}: implausible ambient temperature {amb:.1f} C "
                                             f"(expected {alo:g}..{ahi:g})")
    ambient = f", ambient {amb:.1f} C" if math.isfinite(amb) else ""
    return CheckResult("thermal", True, f"{where}: object {obj:.1f} C{ambient}, {stats.frames_ok} frames, "
                                        f"{stats.checksum_failures} checksum failures")


def check_calibration(cfg: GateConfig) -> CheckResult:
    """Was the thermal sensor calibrated at this gate (`gate calibrate thermal`)? A warning if not."""
    if not cfg.policy.temperature_screening:
        return CheckResult("calibration", True, "skipped: temperature screening is off ([policy])")
    cal = cfg.temperature.calibration
    if is_array_sensor(cfg.thermal):
        what, done, when = "the array's thermal-to-camera map", cal.array_done(), cal.affine_calibrated_at
        how = f"{cal.affine_points} positions, residual max {cal.affine_residual_max_px} px"
    else:
        what, done, when = "the spot sensor's offset", cal.spot_done(), cal.spot_calibrated_at
        how = f"{cal.spot_points} points against a {cal.spot_reference}, residual max {cal.spot_residual_max_c} C"
    if not done:
        return CheckResult("calibration", True, f"warning: never calibrated ({what} is the fixed default); "
                                                "run `gate calibrate thermal --config FILE`", warning=True)
    return CheckResult("calibration", True, f"{what} calibrated {when or '(date unknown)'} ({how})")


def check_relay(cfg: GateConfig, limits: Limits) -> CheckResult:
    port = getattr(cfg.relay, "port", None)
    where = f"{cfg.relay.type} on {port}" if port else f"{cfg.relay.type}"
    relay = make_relay(cfg.relay)

    def probe() -> str:
        relay.start()  # opens the device and forces the relay off
        if relay.state:
            raise RelayError("the relay did not report off after start")
        st = relay.stats
        if st.write_failures:
            raise RelayError(f"{st.write_failures} failed writes ({st.last_error})")
        return f"{where}: opened and forced off ({st.writes} writes accepted)"

    try:
        return CheckResult("relay", True, _in_thread(probe, limits.relay_timeout_s, "relay"))
    except (RelayError, OSError, TimeoutError) as exc:
        return CheckResult("relay", False, f"{where}: {exc}")
    finally:
        try:
            relay.close()
        except (RelayError, OSError) as exc:
            log.warning("selftest: closing the relay failed: %s", exc)


def check_broker(mqtt: MqttConfig | None, client_id: str, limits: Limits) -> CheckResult:
    """Connect to the broker as the gate does (the same client builder: credentials, TLS with the CA,
    client certificate and minimum version); `mqtt` is the config's [mqtt] section or None."""
    if mqtt is None or not mqtt.enabled:
        return CheckResult("broker", True, "skipped: MQTT not configured")
    import paho.mqtt.client as paho

    from edge.sync.client import make_client

    host, port = mqtt.host, mqtt.port
    where = f"{host}:{port}"
    try:
        password = mqtt.password()
    except ValueError as exc:  # SecretError: the reference points at nothing
        return CheckResult("broker", False, f"{where}: password: {exc}")
    try:
        client = make_client(mqtt, client_id, password=password)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return CheckResult("broker", False, f"{where}: TLS files: {exc}; check [mqtt] tls_ca_file, tls_cert_file, "
                           "tls_key_file")
    answer: dict[str, str] = {}
    done = threading.Event()

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: Any, _p: object = None) -> None:
        answer["reason"] = str(reason)
        answer["ok"] = "no" if reason.is_failure else "yes"
        done.set()

    def on_disconnect(_c: paho.Client, _u: object, _f: object, reason: Any, _p: object = None) -> None:
        answer.setdefault("reason", str(reason))
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=10)
    except ssl.SSLCertVerificationError as exc:
        return CheckResult("broker", False, f"{where}: TLS handshake failed: the broker's certificate is not "
                           f"trusted ({exc.verify_message or exc}); check [mqtt] tls_ca_file")
    except ssl.SSLError as exc:
        return CheckResult("broker", False, f"{where}: TLS handshake failed ({exc}); [mqtt] tls_min_version is "
                           f"{mqtt.tls_min_version}")
    except OSError as exc:
        return CheckResult("broker", False, f"{where}: cannot connect: {exc}")
    client.loop_start()
    try:
        if not done.wait(limits.broker_timeout_s):
            return CheckResult("broker", False, f"{where}: no CONNACK within {limits.broker_timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()
    user = f" as {mqtt.username}" if mqtt.username else " (anonymous)"
    if answer.get("ok") == "yes":
        return CheckResult("broker", True, f"{where}: connected{user}")
    return CheckResult("broker", False, f"{where}: refused{user}: {answer.get('reason', 'connection lost')}")


def check_clock(now: datetime | None = None) -> CheckResult:
    now = now or datetime.now(UTC)
    text = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    if now.year < EARLIEST_YEAR:
        return CheckResult("clock", False, f"{text} is in the past: no RTC and no time sync? (events and "
                                           "pass validity need the right time)")
    if now.year > LATEST_YEAR:
        return CheckResult("clock", False, f"{text} is far in the future: fix the clock")
    return CheckResult("clock", True, text)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(cfg: GateConfig, limits: Limits) -> CheckResult:
    data_dir = cfg.gate.data_dir
    usage = shutil.disk_usage(_existing(data_dir))
    free_mb = usage.free / 1e6
    detail = f"{data_dir}: {free_mb:,.0f} MB free of {usage.total / 1e6:,.0f} MB"
    if free_mb < limits.min_free_mb:
        return CheckResult("disk", False, f"{detail} (needs {limits.min_free_mb:g} MB)")
    return CheckResult("disk", True, detail)


def check_file_modes(cfg: GateConfig) -> CheckResult:
    """The data dir 0700 or stricter and nothing in it (store, -wal, -shm, keys, backups, photos) open to
    group or others; a failure carries the one `chmod` line that fixes it. Changes nothing."""
    data_dir = cfg.gate.data_dir
    if not data_dir.is_dir():
        return CheckResult("permissions", True, f"no data dir yet ({data_dir} is made 0700 at the first start)")
    found = open_to_others(data_dir)
    if found:
        shown = ", ".join(f"{p.relative_to(data_dir) if p != data_dir else p} {m:04o}" for p, m in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        return CheckResult("permissions", False, f"open to other users (residents' face templates): {shown}{more}; "
                                                f"fix: {fix_command(data_dir, found)}")
    return CheckResult("permissions", True, f"{data_dir}: its user's only (0700, files 0600)")


def check_database(cfg: GateConfig) -> CheckResult:
    path = store_path(cfg)
    if not path.exists():
        return CheckResult("database", True, f"no database yet ({path} is created at the first start)")
    try:
        with Store.open(path, tighten_modes=False) as store:  # the modes are check_file_modes' to report
            result = store.integrity_check()
    except StoreError as exc:
        return CheckResult("database", False, str(exc))
    if result != "ok":
        return CheckResult("database", False, f"{path}: {result} (restore a backup: `gate restore FILE`)")
    return CheckResult("database", True, f"{path}: integrity ok")


def run_selftest(cfg: GateConfig, limits: Limits | None = None) -> list[CheckResult]:
    """Every check, in wiring order; one failing part never stops the others from being checked."""
    limits = limits or Limits()
    checks: list[tuple[str, Callable[[], CheckResult]]] = [
        ("clock", check_clock),
        ("disk", lambda: check_disk(cfg, limits)),
        ("models", lambda: check_models(cfg)),
        ("permissions", lambda: check_file_modes(cfg)),
        ("database", lambda: check_database(cfg)),
        ("camera", lambda: check_camera(cfg, limits)),
        ("thermal", lambda: check_thermal(cfg, limits)),
        ("calibration", lambda: check_calibration(cfg)),
        ("relay", lambda: check_relay(cfg, limits)),
        ("broker", lambda: check_broker(getattr(cfg, "mqtt", None), f"{cfg.gate.id}-selftest", limits)),
    ]
    results = []
    for name, check in checks:
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # a check that crashes is a failed check, never a crashed selftest
            log.exception("selftest %s crashed", name)
            result = CheckResult(name, False, f"check crashed: {type(exc).__name__}: {exc}")
        log.debug("selftest %s: %s in %.2f s", name, "ok" if result.ok else "FAIL", time.monotonic() - started)
        results.append(result)
    return results


def format_table(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check':<{width}}  result  detail"]
    for r in results:
        state = ("skip" if r.detail.startswith("skipped") else "WARN" if r.warning else "ok") if r.ok else "FAIL"
        lines.append(f"{r.name:<{width}}  {state:<6}  {r.detail}")
    failed = [r.name for r in results if not r.ok]
    warned = [r.name for r in results if r.ok and r.warning]
    note = f" (warnings: {', '.join(warned)})" if warned else ""
    lines.append(f"FAILED: {', '.join(failed)}{note}" if failed else f"all checks passed{note}")
    return "\n".join(lines)


def to_json(results: list[CheckResult]) -> str:
    return json.dumps({"ok": all(r.ok for r in results), "checks": [asdict(r) for r in results]},
                      ensure_ascii=False)
