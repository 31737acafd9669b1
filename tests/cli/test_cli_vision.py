"""`gate faces`, `gate enroll`, `gate identify` through the real CLI on real photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_gate_faces_json_one_object_per_image(t1_path: Path, hanks_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    proc = subprocess.run([sys.executable, "-m", "edge", "faces", str(t1_path), str(hanks_path), str(broken),
                           "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2  # one unreadable image: reported, the others still processed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [len(o.get("faces", [])) for o in lines] == [6, 1, 0]
    assert "error" in lines[2] and "readable" in lines[2]["error"]
    face = lines[1]["faces"][0]
    assert set(face) >= {"bbox", "score", "landmarks", "embedding"}
    assert len(face["landmarks"]) == 5 and len(face["embedding"]) == 128
    assert abs(np.linalg.norm(face["embedding"]) - 1.0) < 1e-3


def _variant(src: Path, dst: Path, gain: float) -> Path:
    image = cv2.imread(str(src))
    cv2.imwrite(str(dst), np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return dst


def test_enroll_then_identify_names_the_resident_and_not_a_stranger(
        tmp_path: Path, unknown_photos: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    resident = next(p for p in unknown_photos if p.name == "Male_45_5.jpg")
    assert main(["enroll", *data, "--id", "R1", "--name", "Resident One", str(resident)]) == 0
    other = next(p for p in unknown_photos if p.name == "Female_41_6.jpg")
    assert main(["enroll", *data, "--id", "R2", "--name", "Resident Two", str(other)]) == 0
    capsys.readouterr()
    darker = _variant(resident, tmp_path / "darker.jpg", 0.65)
    assert main(["identify", *data, str(darker), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["person_id"] == "R1" and out["name"] == "Resident One" and out["decision"] == "match"
    stranger = next(p for p in unknown_photos if p.name == "Male_24_13.jpg")
    assert main(["identify", *data, str(stranger), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["person_id"] is None and out["decision"] == "unknown"
    # no photo was kept: the data dir holds only the SQLite store
    kept = [p for p in (tmp_path / "data").rglob("*") if p.suffix.lower() in {".jpg", ".png", ".jpeg"}]
    assert kept == []


def test_enroll_refuses_an_image_without_a_usable_face(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert main(["enroll", "--data-dir", str(tmp_path / "d"), "--id", "X", "--name", "X", str(blank)]) == 1
