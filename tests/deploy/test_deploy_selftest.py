"""`gate selftest` against the simulators (passes) and with each part broken (fails, naming the part)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deploy_helpers import Broker, sim_config

from drivers.thermal.gy_mcu90614 import encode_frame as encode_90614
from edge.cli import main as gate_main
from edge.config import load_config
from edge.models import DEFAULT_MODELS_DIR
from edge.selftest import Limits, check_broker, check_clock, check_database, check_disk, format_table, run_selftest
from edge.store import Store

FAST = Limits(camera_timeout_s=5.0, thermal_timeout_s=2.0, relay_timeout_s=5.0, broker_timeout_s=5.0)


def _cli(argv: list[str]) -> int:
    return gate_main(argv)  # the installed `gate` command's entry point


def _failed(cfg_path: Path) -> dict[str, str]:
    return {r.name: r.detail for r in run_selftest(load_config(cfg_path), FAST) if not r.ok}


def test_simulated_gate_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = sim_config(tmp_path)
    results = run_selftest(load_config(cfg), FAST)
    assert [r.name for r in results] == ["clock", "disk", "models", "permissions", "database", "camera", "thermal",
                                         "calibration", "relay", "broker"]
    assert all(r.ok for r in results), format_table(results)
    by = {r.name: r.detail for r in results}
    assert by["broker"] == "skipped: MQTT not configured"
    assert "640x480" in by["camera"]
    assert "no database yet" in by["database"]
    assert "object" in by["thermal"]

    assert _cli(["selftest", "--config", str(cfg), "--timeout", "5"]) == 0
    table = capsys.readouterr().out
    assert "all checks passed" in table and "skip" in table
    assert _cli(["selftest", "--config", str(cfg), "--json", "--timeout", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and len(doc["checks"]) == 10


def test_missing_model_fails_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(DEFAULT_MODELS_DIR / "manifest.toml", models / "manifest.toml")
    shutil.copyfile(DEFAULT_MODELS_DIR / "face_detection_yunet_2023mar.onnx",
                    models / "face_detection_yunet_2023mar.onnx")  # the embedder is missing
    cfg = sim_config(tmp_path, f'[vision]\nmodels_dir = "{models}"\n')
    failed = _failed(cfg)
    assert set(failed) == {"models"}
    assert "face_recognition_sface_2021dec.onnx is missing" in failed["models"]
    assert _cli(["selftest", "--config", str(cfg), "--timeout", "2"]) == 1
    assert "FAILED: models" in capsys.readouterr().out


def test_corrupt_model_fails_models(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(DEFAULT_MODELS_DIR / "manifest.toml", models / "manifest.toml")
    for name in ("face_detection_yunet_2023mar.onnx", "face_recognition_sface_2021dec.onnx"):
        (models / name).symlink_to(DEFAULT_MODELS_DIR / name)
    (models / "face_detection_yunet_2023mar.onnx").unlink()
    data = bytearray((DEFAULT_MODELS_DIR / "face_detection_yunet_2023mar.onnx").read_bytes())
    data[1000] ^= 0xFF
    (models / "face_detection_yunet_2023mar.onnx").write_bytes(bytes(data))
    failed = _failed(sim_config(tmp_path, f'[vision]\nmodels_dir = "{models}"\n'))
    assert set(failed) == {"models"} and "has sha256" in failed["models"]


def test_missing_camera_folder_fails_camera(tmp_path: Path) -> None:
    failed = _failed(sim_config(tmp_path, camera=tmp_path / "unplugged"))
    assert set(failed) == {"camera"}
    assert "no images" in failed["camera"]


def test_thermal_on_missing_port_fails_thermal(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB9"
    failed = _failed(sim_config(tmp_path, thermal=f'[thermal]\ntype = "gy_mcu90614"\nport = "{port}"\n'))
    assert set(failed) == {"thermal"}
    assert str(port) in failed["thermal"] and "no reading" in failed["thermal"]


class _PtyModule:
    """A serial port that exists and opens, behind which a thermal module sends `frame` (or nothing) every 50 ms."""

    def __init__(self, frame: bytes | None) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.frame = frame
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._speak, daemon=True)
        self.thread.start()

    def _speak(self) -> None:
        while not self.stop.wait(0.05):
            with contextlib.suppress(OSError):
                os.read(self.master, 4096) if select.select([self.master], [], [], 0)[0] else None
                if self.frame is not None:
                    os.write(self.master, self.frame)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize(("frame", "expect"), [
    (None, "the port is open but the module sends nothing"),  # present, opens, but silent (dead module)
    (encode_90614(33.0, 24.0)[:-1] + b"\x00", "checksum failures"),  # noise on the line, or another baud
    (encode_90614(71.5, 24.0), "implausible object temperature 71.5 C"),  # a hot-plate, not a face
    (encode_90614(31.0, 95.0), "implausible ambient temperature 95.0 C"),
])
def test_thermal_present_but_silent_or_implausible_fails_thermal(tmp_path: Path, frame: bytes | None,
                                                                 expect: str) -> None:
    module = _PtyModule(frame)
    try:
        failed = _failed(sim_config(tmp_path, thermal=f'[thermal]\ntype = "gy_mcu90614"\nport = "{module.path}"\n'))
    finally:
        module.close()
    assert set(failed) == {"thermal"}
    assert module.path in failed["thermal"] and expect in failed["thermal"], failed["thermal"]


def test_thermal_plausible_module_on_a_real_port_passes(tmp_path: Path) -> None:
    module = _PtyModule(encode_90614(33.2, 24.5))
    try:
        results = run_selftest(load_config(sim_config(
            tmp_path, thermal=f'[thermal]\ntype = "gy_mcu90614"\nport = "{module.path}"\n')), FAST)
    finally:
        module.close()
    thermal = next(r for r in results if r.name == "thermal")
    assert thermal.ok and "object 33.2 C, ambient 24.5 C" in thermal.detail


def test_relay_on_missing_port_fails_relay(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB8"
    failed = _failed(sim_config(tmp_path, relay=f'[relay]\ntype = "lcus"\nport = "{port}"\n'))
    assert set(failed) == {"relay"}
    assert str(port) in failed["relay"] and "cannot open" in failed["relay"]


def test_everything_broken_reports_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = sim_config(tmp_path, '[vision]\nmodels_dir = "no-models"\n', camera=tmp_path / "none",
                     thermal=f'[thermal]\ntype = "gy_mcu90614"\nport = "{tmp_path / "t"}"\n',
                     relay=f'[relay]\ntype = "lcus"\nport = "{tmp_path / "r"}"\n')
    assert _cli(["selftest", "--config", str(cfg), "--json", "--timeout", "2"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert {c["name"] for c in doc["checks"] if not c["ok"]} == {"models", "camera", "thermal", "relay"}


def test_clock() -> None:
    assert check_clock(datetime(2026, 3, 1, tzinfo=UTC)).ok
    assert not check_clock(datetime(1970, 1, 1, 0, 5, tzinfo=UTC)).ok  # no RTC, no NTP yet
    assert not check_clock(datetime(2150, 1, 1, tzinfo=UTC)).ok
    assert check_clock().ok


def test_disk_threshold(tmp_path: Path) -> None:
    cfg = load_config(sim_config(tmp_path))
    assert check_disk(cfg, Limits(min_free_mb=1)).ok
    low = check_disk(cfg, Limits(min_free_mb=1e12))
    assert not low.ok and "needs" in low.detail


def test_database_integrity(tmp_path: Path) -> None:
    cfg = load_config(sim_config(tmp_path))
    db = cfg.gate.data_dir / "gate.db"
    Store.open(db).close()
    good = check_database(cfg)
    assert good.ok and "integrity ok" in good.detail
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    raw[page + 8:page * 2] = bytes(len(raw[page + 8:page * 2]))  # wipe a b-tree page
    db.write_bytes(bytes(raw))
    bad = check_database(cfg)
    assert not bad.ok, bad.detail


def test_broker_with_credentials(password_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.config.mqtt import MqttConfig

    url = f"mqtt://127.0.0.1:{password_broker.port}"
    monkeypatch.setenv("EDGE_GATE_TEST_MQTT_PW", password_broker.password)
    good = MqttConfig(enabled=True, url=url, username=password_broker.user,
                      password_secret="{env:EDGE_GATE_TEST_MQTT_PW}")
    result = check_broker(good, "selftest-a", FAST)
    assert result.ok, result.detail
    monkeypatch.setenv("EDGE_GATE_TEST_MQTT_PW", "wrong")
    refused = check_broker(good, "selftest-b", FAST)
    assert not refused.ok and "refused" in refused.detail
    anonymous = check_broker(MqttConfig(enabled=True, url=url), "selftest-c", FAST)
    assert not anonymous.ok
    monkeypatch.delenv("EDGE_GATE_TEST_MQTT_PW")
    unset = check_broker(good, "selftest-d", FAST)
    assert not unset.ok and "EDGE_GATE_TEST_MQTT_PW" in unset.detail
    assert check_broker(MqttConfig(enabled=False, url=url), "x", FAST).detail == "skipped: MQTT not configured"


def test_broker_down(password_broker: Broker) -> None:
    from edge.config.mqtt import MqttConfig

    password_broker.proc.terminate()
    password_broker.proc.wait(5)
    down = check_broker(MqttConfig(enabled=True, url=f"mqtt://127.0.0.1:{password_broker.port}"), "s", FAST)
    assert not down.ok and "cannot connect" in down.detail
