"""Turning files and arrays into the one image form the pipeline takes: contiguous BGR uint8.

Anything else (empty, truncated, 16-bit, grayscale, with alpha, absurdly large) is converted when
that is safe and refused with a clear ImageError when it is not; nothing here crashes on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

MAX_PIXELS = 40_000_000  # 40 MP: far beyond any gate camera; refuses decompression bombs
MIN_SIDE = 16


class ImageError(ValueError):
    """The input is not an image the engine can use; the message says why."""


def to_bgr(array: Any, what: str = "image") -> Image:
    """Validate and convert an array to contiguous BGR uint8 (HxWx3)."""
    if not isinstance(array, np.ndarray):
        raise ImageError(f"{what}: expected a numpy array, got {type(array).__name__}")
    if array.size == 0:
        raise ImageError(f"{what}: empty image")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{what}: unsupported shape {array.shape}; expected HxW, HxWx3 or HxWx4")
    h, w = array.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ImageError(f"{what}: too small ({w}x{h}); at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if h * w > MAX_PIXELS:
        raise ImageError(f"{what}: too large ({w}x{h}); at most {MAX_PIXELS // 1_000_000} megapixels")
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype in (np.float32, np.float64):
        if not np.isfinite(array).all():
            raise ImageError(f"{what}: float image with NaN or infinity")
        peak = float(array.max())
        array = np.clip(array * (255.0 if peak <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageError(f"{what}: unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(array)


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the file header without decoding pixels (None if unknown)."""
    from io import BytesIO

    from PIL import Image as PILImage

    try:
        with PILImage.open(BytesIO(data)) as im:
            return int(im.size[0]), int(im.size[1])
    except PILImage.DecompressionBombError:
        return (1 << 20, 1 << 20)  # far over any limit: PIL refused it from the header alone
    except Exception:
        return None


def decode_image(data: bytes, what: str = "image") -> Image:
    """Decode encoded image bytes (JPEG, PNG, ...) into BGR uint8, refusing bombs and corrupt files."""
    if not data:
        raise ImageError(f"{what}: empty file")
    size = _header_size(data)
    if size and size[0] * size[1] > MAX_PIXELS:
        raise ImageError(f"{what}: too large ({size[0]}x{size[1]}); at most {MAX_PIXELS // 1_000_000} megapixels")
    buf = np.frombuffer(data, np.uint8)
    try:
        array = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"{what}: cannot decode ({exc.msg.strip() if hasattr(exc, 'msg') else exc})") from exc
    if array is None:
        raise ImageError(f"{what}: not a readable image (unknown format or truncated/corrupt data)")
    return to_bgr(array, what)


def load_image(path: str | Path) -> Image:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    return decode_image(data, str(p))
