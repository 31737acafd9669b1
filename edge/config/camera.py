"""The `[camera]` section: which source, its size and rate, reconnects and the fault thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class CameraConfig(Section):
    type: Literal["v4l2", "url", "file", "folder"] = Field(
        "v4l2", description="v4l2: a local camera (index or /dev/videoN); url: RTSP/HTTP stream; file: a video "
        "file; folder: images replayed in name order (tests, demo).")
    source: str = Field("0", description="Device index or path, stream URL, video file or image folder.")
    width: int = Field(640, ge=0, description="Requested capture width (v4l2; 0 = the device's default).")
    height: int = Field(480, ge=0, description="Requested capture height (v4l2; 0 = the device's default).")
    fps: float = Field(15.0, gt=0, le=120, description="Frame rate for folder/file replay (and requested of v4l2).")
    loop: bool = Field(True, description="Replay sources start again at the end instead of ending.")
    reconnect_min_s: float = Field(0.5, gt=0, description="First wait before reopening a failed source.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reopen attempts (backoff cap).")
    frozen_after_s: float = Field(10.0, gt=0, description="Identical frames for this long: the stream is frozen.")
    black_level: float = Field(8.0, ge=0, le=255, description="Mean grey level below which a frame counts as black.")
    black_after_s: float = Field(10.0, gt=0, description="Black frames for this long: the camera is covered/dead.")
    stale_after_s: float = Field(5.0, gt=0, description="No new frame for this long while connected (a hung "
                                 "driver or stream): the camera is at fault.")
