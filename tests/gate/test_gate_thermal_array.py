"""A real gate (the in-process `Gate` that `gate run` runs, with its supervisor passes) reading a replay
camera of a resident walking up again and again, and a simulated GY-MCU90640 32x24 array on a pty
(`thermal.type = "sim"`) whose face is where the camera's face maps to: the temperature is measured at
the face's inner eye corners, and with `require_liveness` on a cold "photo" of the resident is refused
as a spoof. Decisions are read from the gate's SQLite store."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import load_config
from edge.config.temperature import TemperatureConfig
from edge.demo_scene import HANKS
from edge.enroll import enroll_images, store_path
from edge.gate import Gate
from edge.records import EventRecord
from edge.store import Store
from edge.temperature import canthus_points, map_points
from edge.vision import FaceEngine
from edge.vision.image import Image, load_image

W, H = 640, 480
DEADLINE_S = 120.0  # generous: the machine is shared and slow
CANTHUS_C = 36.5  # the simulator's inner eye corner (drivers/thermal/sim.py Scene.canthus_c)


@dataclass(frozen=True)
class Prepared:
    db: Path  # R001 (Tom Hanks) enrolled
    camera: Path  # replay folder: Tom Hanks near the gate, then the empty hallway
    face_col: float  # where the simulator must put the face (thermal pixels)
    face_row: float


def _hallway() -> Image:
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    return np.asarray(np.broadcast_to(70 + 50 * y, (H, W, 3)), np.uint8).copy()


def _resident_frame(engine: FaceEngine, face_w: int) -> Image:
    """Tom Hanks' photo scaled so his face is `face_w` px wide, pasted in the middle of the hallway."""
    photo = load_image(HANKS)
    x, y, w, h = engine.detect(photo)[0].bbox
    k = face_w / w
    scaled = cv2.resize(photo, (round(photo.shape[1] * k), round(photo.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    frame = _hallway()
    x0, y0 = round(W / 2 - (x + w / 2) * k), round(H / 2 - (y + h / 2) * k)
    top, left = max(0, y0), max(0, x0)
    bottom, right = min(H, y0 + scaled.shape[0]), min(W, x0 + scaled.shape[1])
    frame[top:bottom, left:right] = scaled[top - y0:bottom - y0, left - x0:right - x0]
    return frame


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Prepared:
    root = tmp_path_factory.mktemp("gate-array")
    (root / "base.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    cfg = load_config(root / "base.toml")
    assert enroll_images(cfg, "R001", "Tom Hanks", [str(HANKS)], engine=engine).templates == 1
    camera = root / "camera"
    camera.mkdir()
    near = _resident_frame(engine, 160)
    # he stands at the gate for 3 s (longer than the lane waits for a valid temperature), leaves (his
    # track ends) and comes back
    frames = [near] * 30 + [_hallway()] * 10
    for i, image in enumerate(frames):
        assert cv2.imwrite(str(camera / f"{i:04d}.jpg"), image)
    # the thermal face: its eyes (the simulator puts them face_half_size[1] / 3 = 2 rows above its centre)
    # on the thermal pixels under the face's inner eye corners, through the default calibration
    det = engine.detect(load_image(camera / "0000.jpg"))[0]
    cal = TemperatureConfig()
    canthi = map_points(canthus_points(det.landmarks, cal), cal.thermal_affine)
    return Prepared(store_path(cfg), camera, float(round(canthi[:, 0].mean())), float(round(canthi[:, 1].mean()) + 2))


def _config(prepared: Prepared, tmp: Path, scenario: str, policy: str) -> Path:
    data = tmp / "data"
    data.mkdir()
    shutil.copyfile(prepared.db, data / "gate.db")
    path = tmp / "gate.toml"
    path.write_text(f'[gate]\nid = "array-1"\ndata_dir = "{data}"\n'
                    f'[camera]\ntype = "folder"\nsource = "{prepared.camera}"\nfps = 10\n'
                    f'[thermal]\ntype = "sim"\nkind = "gy_mcu90640"\nscenario = "{scenario}"\nrate_hz = 8\n'
                    f"face_col = {prepared.face_col}\nface_row = {prepared.face_row}\n"
                    f'[relay]\ntype = "sim"\nkind = "lcus"\n'
                    f"[policy]\nanti_passback_s = 0\nrequire_liveness = true\n{policy}\n"
                    f"[web]\nenabled = false\n")
    return path


def _events(db: Path) -> list[EventRecord]:
    with Store.open(db) as store:
        return list(store.events(limit=1000))


def run_until(gate: Gate, done: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    """Start the gate, run its supervisor pass as `gate run` does until `done()`, then shut it down."""
    gate.start()
    try:
        end = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < end, "timed out waiting for the gate's decisions"
            gate.check()
            time.sleep(0.1)
    finally:
        gate.shutdown()


def _decisions(tmp_path: Path, prepared: Prepared, scenario: str, policy: str = "") -> list[EventRecord]:
    """The gate's first two decisions for R001 (two visits), from its store."""
    cfg = load_config(_config(prepared, tmp_path, scenario, policy))
    assert cfg.policy.require_liveness and cfg.policy.temperature_screening
    db = store_path(cfg)
    gate = Gate(cfg)

    def two() -> bool:
        return len([e for e in _events(db) if e.person_id == "R001"]) >= 2

    try:
        run_until(gate, two)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; decided: {[(e.person_id, e.decision, e.reasons) for e in _events(db)]}") from exc
    events = [e for e in _events(db) if e.person_id == "R001"]
    assert len(events) >= 2
    return events


@pytest.mark.slow
def test_live_face_measured_at_the_canthus_is_let_in(tmp_path: Path, prepared: Prepared) -> None:
    events = _decisions(tmp_path, prepared, "normal")
    for e in events:
        assert e.decision == "grant", e.reasons
        t = e.temperature
        assert t is not None and t["source"] == "array" and t["valid"] is True
        # the inner eye corners (36.5 C), not the simulated forehead (about 35 C)
        assert abs(float(str(t["raw_c"])) - CANTHUS_C) < 0.4, t
        assert 36.0 <= float(str(t["body_c"])) < 37.3, t


@pytest.mark.slow
def test_cold_photo_is_refused_as_a_spoof(tmp_path: Path, prepared: Prepared) -> None:
    # a missing or faulty temperature lets people in here: only the liveness rule can refuse the photo
    events = _decisions(tmp_path, prepared, "photo", 'sensor_fault_policy = "allow_and_alarm"')
    for e in events:
        assert e.decision == "deny", e.reasons
        assert [r["code"] for r in e.reasons if r["effect"] == "deny"] == ["spoof_suspected"], e.reasons
        assert any(a["kind"] == "spoof" for a in e.alarms)
    with Store.open(store_path(load_config(tmp_path / "gate.toml"))) as store:
        assert "spoof" in {a.kind for a in store.alarms(limit=100)}
