"""Bad images give a clear ImageError, never a crash; odd but usable ones are converted."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.vision import ImageError, decode_image, load_image, to_bgr


def test_unreadable_empty_truncated_and_missing(tmp_path: Path, hanks_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    data = (hanks_path).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    for name, words in [("empty.jpg", "empty"), ("text.jpg", "not a readable image"),
                        ("cut.png", "not a readable image"), ("missing.jpg", "cannot read")]:
        with pytest.raises(ImageError, match=words):
            load_image(tmp_path / name)


def test_grayscale_16bit_alpha_and_float_are_converted(hanks_path: Path) -> None:
    bgr = load_image(hanks_path)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert to_bgr(gray).shape == (112, 112, 3)
    sixteen = gray.astype(np.uint16) * 257
    ok, png16 = cv2.imencode(".png", sixteen)
    assert ok
    out = decode_image(png16.tobytes())
    assert out.dtype == np.uint8 and out.shape == (112, 112, 3)
    assert np.abs(out[..., 0].astype(int) - gray.astype(int)).max() <= 1
    assert to_bgr(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)).shape == (112, 112, 3)
    assert to_bgr(bgr.astype(np.float32) / 255.0).dtype == np.uint8


def test_huge_tiny_and_wrong_shapes_are_refused() -> None:
    with pytest.raises(ImageError, match="too small"):
        to_bgr(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        to_bgr(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ImageError, match="unsupported shape"):
        to_bgr(np.zeros((20, 20, 5), np.uint8))
    with pytest.raises(ImageError, match="numpy array"):
        to_bgr("a picture")
    with pytest.raises(ImageError, match="NaN"):
        to_bgr(np.full((20, 20, 3), np.nan, np.float32))
    # a PNG header claiming 50000x50000 pixels: refused before any pixel is decoded
    _ok, png = cv2.imencode(".png", np.zeros((20, 20), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = (50000).to_bytes(4, "big") + (50000).to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid IHDR chunk
    with pytest.raises(ImageError, match="too large"):
        decode_image(bytes(data))


def test_engine_rejects_bad_arrays_cleanly(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageError):
        engine.analyze(np.zeros((0, 0, 3), np.uint8))
    assert engine.analyze(np.zeros((240, 320), np.uint8)) == []
