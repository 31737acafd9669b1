"""The `url` camera through cv2.VideoCapture (OpenCV's FFMPEG backend) on a real MJPEG-over-HTTP stream
served on 127.0.0.1 by this test (multipart/x-mixed-replace of JPEG frames, as IP cameras serve it):
frames flow, the stream stopping is noticed (the camera disconnects and says why), and when the stream
comes back on the same address the camera reconnects by itself and frames flow again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from support.wait import wait_until

from edge.camera import Camera, Frame
from edge.config.camera import CameraConfig

W, H = 320, 240
DEADLINE_S = 60.0  # generous: the machine is shared and slow
BOUNDARY = "gateframe"


def _jpeg(level: int, n: int) -> bytes:
    """A frame of grey `level` with a moving bar (so the stream is never frozen)."""
    image = np.full((H, W, 3), level, np.uint8)
    x = (n * 7) % (W - 20)
    image[H // 2 - 10:H // 2 + 10, x:x + 20] = 255 - level
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(buf)


class MjpegServer:
    """An MJPEG stream at http://127.0.0.1:<port>/stream.mjpg; stop() closes it and every open connection."""

    def __init__(self, level: int, port: int = 0, fps: float = 20.0) -> None:
        self.level, self.fps = level, fps
        self.stopping = threading.Event()
        self.clients = 0  # connections served
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                server.clients += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                n = 0
                try:
                    while not server.stopping.is_set():
                        data = _jpeg(server.level, n)
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        n += 1
                        server.stopping.wait(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the camera went away

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self.stopping.set()  # the streaming handlers end and their connections close
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


@pytest.fixture()
def servers() -> Iterator[list[MjpegServer]]:
    made: list[MjpegServer] = []
    yield made
    for s in made:
        if not s.stopping.is_set():
            s.stop()


@pytest.fixture()
def cameras() -> Iterator[list[Camera]]:
    made: list[Camera] = []
    yield made
    for c in made:
        c.stop(15)


def _next_frame(camera: Camera) -> Frame:
    frame = camera.buffer.get(timeout=DEADLINE_S)
    assert frame is not None, f"no frame: {camera.health()}"
    return frame


def _level(frame: Frame) -> float:
    return float(np.median(frame.image))


def test_build_has_ffmpeg() -> None:
    info = cv2.getBuildInformation()
    assert any(line.split(":")[0].strip() == "FFMPEG" and "YES" in line for line in info.splitlines())


def test_url_camera_reads_an_mjpeg_stream(servers: list[MjpegServer], cameras: list[Camera]) -> None:
    server = MjpegServer(level=60)
    servers.append(server)
    camera = Camera(CameraConfig(type="url", source=server.url, reconnect_min_s=0.2, reconnect_max_s=1.0))
    cameras.append(camera)
    camera.start()
    wait_until(lambda: camera.health().connected and camera.frames >= 10, what="10 frames")
    frame = _next_frame(camera)
    assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
    assert abs(_level(frame) - 60) < 8  # the served picture, decoded
    health = camera.health()
    assert health.ok and health.fps > 0 and health.reconnects == 0, health


def test_url_camera_reconnects_when_the_stream_comes_back(servers: list[MjpegServer], cameras: list[Camera]) -> None:
    first = MjpegServer(level=60)
    servers.append(first)
    camera = Camera(CameraConfig(type="url", source=first.url, reconnect_min_s=0.2, reconnect_max_s=1.0))
    cameras.append(camera)
    camera.start()
    wait_until(lambda: camera.health().connected and camera.frames >= 5, what="the first stream's frames")
    assert abs(_level(_next_frame(camera)) - 60) < 8

    first.stop()  # the camera's stream stops: server gone, connection closed
    wait_until(lambda: not camera.health().connected, what="the camera noticing the stream stopped")
    health = camera.health()
    assert not health.ok and health.last_error is not None, health
    assert camera.reconnects >= 1
    frames_when_gone = camera.frames
    camera.buffer.get(timeout=0.01)  # drop a frame still buffered from before
    # while nothing listens, reopening fails (and is retried): no frame appears from nowhere
    wait_until(lambda: (camera.last_error or "").startswith("open failed"), what="a failed reopen")
    assert camera.frames == frames_when_gone and not camera.health().connected

    second = MjpegServer(level=180, port=first.port)  # the stream comes back at the same address
    servers.append(second)
    wait_until(lambda: camera.health().connected and camera.frames >= frames_when_gone + 5,
               what="frames after the stream came back")
    frame = _next_frame(camera)
    assert abs(_level(frame) - 180) < 8  # the new stream's picture
    assert second.clients >= 1
    wait_until(lambda: camera.health().ok, what="a healthy camera again")
    assert camera.health().reconnects >= 1
