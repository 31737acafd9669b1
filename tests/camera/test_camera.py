"""Capture: replay sources, the latest-frame buffer, reconnect, frozen and black streams."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from support.wait import poll_until

from edge.camera import Camera, Frame, LatestFrame
from edge.config.camera import CameraConfig


def write_frames(folder: Path, n: int, black: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((120, 160, 3), np.uint8) if black else rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)


def test_latest_frame_keeps_only_the_newest_and_counts_drops() -> None:
    buf = LatestFrame()
    img = np.zeros((20, 20, 3), np.uint8)
    for seq in range(1, 6):
        buf.put(Frame(img, seq, time.monotonic()))
    got = buf.get(0.1)
    assert got is not None and got.seq == 5 and buf.dropped == 4
    assert buf.get(0.05) is None


def test_folder_replay_paces_frames_and_reports_fps(tmp_path: Path) -> None:
    write_frames(tmp_path / "f", 10)
    cam = Camera(CameraConfig(type="folder", source=str(tmp_path / "f"), fps=40))
    cam.start()
    try:
        seqs = []
        while len(seqs) < 15:
            frame = cam.buffer.get(1.0)
            assert frame is not None
            seqs.append(frame.seq)
        h = cam.health()
        assert h.connected and h.ok and 20 < h.fps < 60
        assert seqs == sorted(seqs)
    finally:
        cam.stop()
    assert not cam.alive


def test_slow_consumer_drops_frames_capture_never_waits(tmp_path: Path) -> None:
    write_frames(tmp_path / "f", 5)
    cam = Camera(CameraConfig(type="folder", source=str(tmp_path / "f"), fps=100))
    cam.start()
    try:
        assert poll_until(lambda: cam.frames >= 40)
        assert cam.health().dropped >= 35  # nobody consumed: all but the newest were replaced
        assert cam.health().skipped_fps > 0
    finally:
        cam.stop()


def test_missing_source_reconnects_with_backoff_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    cam = Camera(CameraConfig(type="folder", source=str(folder), fps=30, reconnect_min_s=0.05, reconnect_max_s=0.2))
    cam.start()
    try:
        assert poll_until(lambda: cam.last_error is not None)
        assert not cam.health().connected
        write_frames(folder, 3)  # the camera is plugged in
        assert poll_until(lambda: cam.health().connected and cam.frames > 3)
    finally:
        cam.stop()


def test_unplugged_mid_stream_is_noticed_and_reopened(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    write_frames(folder, 3)
    cam = Camera(CameraConfig(type="folder", source=str(folder), fps=50, loop=False, reconnect_min_s=0.05,
                              reconnect_max_s=0.1))
    cam.start()
    try:
        assert poll_until(lambda: cam.reconnects >= 1)  # end of a non-looping replay = the stream went away
        shutil.rmtree(folder)
        assert poll_until(lambda: cam.last_error is not None and "open failed" in cam.last_error)
        write_frames(folder, 3)
        before = cam.frames
        assert poll_until(lambda: cam.frames > before)
    finally:
        cam.stop()


def test_frozen_and_black_streams_are_detected(tmp_path: Path) -> None:
    write_frames(tmp_path / "one", 1)
    cam = Camera(CameraConfig(type="folder", source=str(tmp_path / "one"), fps=50, frozen_after_s=0.3))
    cam.start()
    try:
        assert poll_until(lambda: cam.health().frozen)
        assert not cam.health().ok
    finally:
        cam.stop()
    write_frames(tmp_path / "dark", 4, black=True)
    cam = Camera(CameraConfig(type="folder", source=str(tmp_path / "dark"), fps=50, black_after_s=0.3))
    cam.start()
    try:
        assert poll_until(lambda: cam.health().black)
    finally:
        cam.stop()


def test_video_file_source(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(1)
    for _ in range(10):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    cam = Camera(CameraConfig(type="file", source=str(path), fps=50))
    cam.start()
    try:
        frame = cam.buffer.get(3.0)
        assert frame is not None and frame.image.shape == (120, 160, 3)
        assert poll_until(lambda: cam.frames > 12)  # looped past the end of the clip
    finally:
        cam.stop()


class HangingSource:
    """A real capture source's failure: a few frames, then a read that never returns (a hung driver or a
    stalled stream) until the source is closed; the capture thread stays "connected" and keeps beating."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.released = threading.Event()
        self.rng = np.random.default_rng(2)

    def read(self) -> np.ndarray | None:
        if self.left > 0:
            self.left -= 1
            time.sleep(0.02)
            return self.rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        self.released.wait()
        return None

    def close(self) -> None:
        self.released.set()


def test_a_camera_that_hangs_while_connected_goes_stale() -> None:
    source = HangingSource(frames=5)
    cam = Camera(CameraConfig(type="folder", source="unused", stale_after_s=0.4))
    cam._open = lambda cfg: source  # the capture thread opens this source instead of a folder
    cam.start()
    try:
        assert poll_until(lambda: cam.frames == 5)
        fresh = cam.health()
        assert fresh.connected and fresh.ok and not fresh.stale
        assert poll_until(lambda: cam.health().stale, timeout=3)
        h = cam.health()
        assert h.connected and not h.ok and h.last_frame_age_s is not None and h.last_frame_age_s >= 0.4
        assert "no new frame" in h.problem
    finally:
        source.close()
        cam.stop()


def test_a_source_that_hangs_before_its_first_frame_goes_stale() -> None:
    source = HangingSource(frames=0)
    cam = Camera(CameraConfig(type="folder", source="unused", stale_after_s=0.3))
    cam._open = lambda cfg: source
    cam.start()
    try:
        assert poll_until(lambda: cam.health().connected)
        assert poll_until(lambda: cam.health().stale, timeout=3)
        assert not cam.health().ok and cam.health().last_frame_age_s is None
    finally:
        source.close()
        cam.stop()
