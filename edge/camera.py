"""Camera capture: sources (V4L2, RTSP/HTTP, video file, image folder replay) and the latest-frame buffer.

Capture runs on its own thread and never waits on inference: each new frame replaces the one the
vision loop has not taken yet, and every such replacement is counted as a drop. The thread reconnects
with backoff when a source fails, and notices a frozen (identical frames) or black stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from drivers.backoff import Backoff
from drivers.heartbeat import DEFAULT_WITHIN_S, Heartbeat
from edge.config.camera import CameraConfig
from edge.vision.image import Image, ImageError, load_image, to_bgr

log = logging.getLogger(__name__)

OPEN_WITHIN_S = 60.0  # opening an RTSP stream may take OpenCV's own 30 s timeout; more than this is a hang
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True, eq=False)
class Frame:
    image: Image
    seq: int
    t: float  # time.monotonic() at capture


class Source(Protocol):
    def read(self) -> Image | None:
        """The next frame, or None at the end of a replay / on a read failure."""
        ...

    def close(self) -> None: ...


class CaptureSource:
    """cv2.VideoCapture behind the Source protocol (v4l2 device, stream URL or video file)."""

    def __init__(self, cfg: CameraConfig) -> None:
        if cfg.type == "v4l2":
            dev: int | str = int(cfg.source) if cfg.source.isdigit() else cfg.source
            self.cap = cv2.VideoCapture(dev, cv2.CAP_V4L2) if isinstance(dev, str) else cv2.VideoCapture(dev)
            if cfg.width and cfg.height:
                self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
                self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            self.cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        else:
            self.cap = cv2.VideoCapture(cfg.source)
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if not self.cap.isOpened():
            raise OSError(f"cannot open camera {cfg.type}:{cfg.source}")
        self.replay = cfg.type == "file"
        self.period = 1.0 / cfg.fps
        self.loop = cfg.loop
        self._next = time.monotonic()

    def read(self) -> Image | None:
        if self.replay:  # pace a file like a live camera
            self._next += self.period
            time.sleep(max(0.0, self._next - time.monotonic()))
        ok, image = self.cap.read()
        if not ok and self.replay and self.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.cap.read()
        return to_bgr(image) if ok and image is not None else None

    def close(self) -> None:
        self.cap.release()


class FolderSource:
    """Images of a folder replayed in name order at a fixed rate, like a camera."""

    def __init__(self, cfg: CameraConfig) -> None:
        folder = Path(cfg.source)
        found = folder.iterdir() if folder.is_dir() else iter(())
        self.files = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise OSError(f"no images in {folder}")
        self.period = 1.0 / cfg.fps
        self.loop = cfg.loop
        self.index = 0
        self._next = time.monotonic()
        self._cache: dict[int, Image] = {}

    def read(self) -> Image | None:
        if self.index >= len(self.files):
            if not self.loop:
                return None
            self.index = 0
        i = self.index
        self.index += 1
        self._next += self.period
        time.sleep(max(0.0, self._next - time.monotonic()))
        if not self.files[i].exists():  # folder removed or emptied: the camera is gone, cached frames or not
            raise OSError(f"{self.files[i]} is gone")
        if i not in self._cache:
            try:
                self._cache[i] = load_image(self.files[i])
            except ImageError as exc:
                log.warning("replay: skipping %s", exc)
                return self.read()
        return self._cache[i]

    def close(self) -> None:
        self._cache.clear()


def open_source(cfg: CameraConfig) -> Source:
    return FolderSource(cfg) if cfg.type == "folder" else CaptureSource(cfg)


class LatestFrame:
    """A one-slot buffer: put() replaces an untaken frame (counted as a drop); get() waits for a new one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


@dataclass(frozen=True)
class CameraHealth:
    connected: bool
    fps: float
    skipped_fps: float
    frames: int
    dropped: int
    reconnects: int
    frozen: bool
    black: bool
    last_frame_age_s: float | None
    last_error: str | None
    stale: bool = False  # connected, but no new frame for stale_after_s (since the last frame or the open)

    @property
    def ok(self) -> bool:
        return self.connected and not self.frozen and not self.black and not self.stale

    @property
    def problem(self) -> str:
        """What is wrong, for alarms and the status page ("ok" when nothing is)."""
        if self.ok:
            return "ok"
        if self.connected and self.stale:
            age = "never" if self.last_frame_age_s is None else f"{self.last_frame_age_s:.1f} s ago"
            return f"no new frame (last {age}): the camera or its driver hangs"
        if self.connected:
            return "frozen" if self.frozen else "black"
        return self.last_error or "no frames"


class Camera:
    """The capture thread: opens the source, reads, fills the buffer, reconnects with backoff."""

    def __init__(self, cfg: CameraConfig, buffer: LatestFrame | None = None) -> None:
        self.cfg = cfg
        self.buffer = buffer or LatestFrame()
        self._open = open_source
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=64)
        self._drop_times: deque[float] = deque(maxlen=64)
        self.frames = 0
        self.reconnects = 0
        self.connected = False
        self.last_error: str | None = None
        self._last_t: float | None = None
        self._opened_t: float | None = None
        self._same_since: float | None = None
        self._black_since: float | None = None
        self._last_sig: bytes | None = None
        self.heartbeat = Heartbeat()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wait_to_reopen(self, backoff: Backoff) -> None:
        delay = backoff.failed()
        self.heartbeat.beat(delay + DEFAULT_WITHIN_S)
        self._stop.wait(delay)

    def _run(self) -> None:
        backoff = Backoff(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
        while not self._stop.is_set():
            self.heartbeat.beat(OPEN_WITHIN_S)
            try:
                source = self._open(self.cfg)
            except (OSError, cv2.error) as exc:
                self._fail(f"open failed: {exc}")
                self._wait_to_reopen(backoff)
                continue
            with self._lock:
                self._opened_t = time.monotonic()
            self.connected = True
            backoff.reset()
            log.info("camera %s:%s open", self.cfg.type, self.cfg.source)
            try:
                self._read_loop(source)
            finally:
                source.close()
            if not self._stop.is_set():
                self.reconnects += 1
                self._wait_to_reopen(backoff)

    def _read_loop(self, source: Source) -> None:
        seq = 0
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                image = source.read()
            except (OSError, cv2.error, ImageError) as exc:
                self._fail(f"read failed: {exc}")
                return
            if image is None:
                self._fail("stream ended or read failed")
                return
            now = time.monotonic()
            seq += 1
            dropped_before = self.buffer.dropped
            self.buffer.put(Frame(image=image, seq=seq, t=now))
            with self._lock:
                self.frames += 1
                self._times.append(now)
                if self.buffer.dropped > dropped_before:
                    self._drop_times.append(now)
                self._last_t = now
                self._watch_content(image, now)

    def _watch_content(self, image: Image, now: float) -> None:
        small = cv2.resize(image, (32, 24), interpolation=cv2.INTER_AREA)
        sig = small.tobytes()
        if sig == self._last_sig:
            self._same_since = self._same_since or now
        else:
            self._same_since = None
        self._last_sig = sig
        if float(np.mean(small)) < self.cfg.black_level:
            self._black_since = self._black_since or now
        else:
            self._black_since = None

    def _fail(self, message: str) -> None:
        if self.connected or self.last_error != message:
            log.warning("camera %s:%s: %s", self.cfg.type, self.cfg.source, message)
        self.connected = False
        self.last_error = message

    @staticmethod
    def _rate(times: deque[float], now: float, window: float = 5.0) -> float:
        recent = [t for t in times if now - t <= window]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def health(self) -> CameraHealth:
        now = time.monotonic()
        with self._lock:
            frozen = self._same_since is not None and now - self._same_since >= self.cfg.frozen_after_s
            black = self._black_since is not None and now - self._black_since >= self.cfg.black_after_s
            newest = max((t for t in (self._last_t, self._opened_t) if t is not None), default=None)
            stale = self.connected and newest is not None and now - newest >= self.cfg.stale_after_s
            return CameraHealth(
                connected=self.connected, fps=self._rate(self._times, now),
                skipped_fps=self._rate(self._drop_times, now), frames=self.frames, dropped=self.buffer.dropped,
                reconnects=self.reconnects, frozen=frozen, black=black,
                last_frame_age_s=None if self._last_t is None else now - self._last_t, last_error=self.last_error,
                stale=stale)
