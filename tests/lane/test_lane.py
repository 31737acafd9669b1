"""The vision loop's rules on real frames (packaged photos composed into a 640x480 hallway): only a face
inside the configured region, and only the nearest (largest) face, can trigger a decision; the
detector runs on every `detect_every`-th frame and a track is re-verified every `recognise_every`
frames. A real Lane with the real FaceEngine and a whitelist enrolled in a real store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import Frame
from edge.config import load_config
from edge.config.lane import LaneConfig
from edge.config.policy import PolicyConfig
from edge.config.temperature import TemperatureConfig
from edge.demo_scene import HANKS, STRANGERS
from edge.enroll import enroll_images, store_path
from edge.lane import Lane, Outcome, Whitelist
from edge.models import fetch_samples, load_manifest
from edge.store import Store
from edge.store.writer import StoreWriter
from edge.vision import FaceEngine
from edge.vision.image import Image, load_image

W, H = 640, 480
MakeLane = Callable[..., tuple[Lane, list[Outcome]]]


@dataclass
class Setup:
    engine: FaceEngine
    db: Path
    resident: Image  # head and shoulders of Tom Hanks (R001, enrolled)
    stranger: Image  # never enrolled


def _head(image: Image, engine: FaceEngine) -> Image:
    x, y, w, h = engine.detect(image)[0].bbox
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 2.0
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(image.shape[1], cx + side / 2)), int(min(image.shape[0], cy + side / 2))
    return np.ascontiguousarray(image[y0:y1, x0:x1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("lane")
    (root / "gate.toml").write_text(f'[gate]\ndata_dir = "{root / "data"}"\n')
    cfg = load_config(root / "gate.toml")
    engine = FaceEngine(cfg.vision)
    assert enroll_images(cfg, "R001", "Tom Hanks", [str(HANKS)], engine=engine).templates == 1
    samples = fetch_samples(load_manifest().samples["ctu_unknowns"])
    return Setup(engine, store_path(cfg), _head(load_image(HANKS), engine),
                 _head(load_image(samples / STRANGERS[0]), engine))


def scene(*faces: tuple[Image, float, float, int]) -> Image:
    """A hallway with each (head, centre x, centre y, side) pasted in; x and y as fractions of the frame."""
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    frame = np.asarray(np.broadcast_to(70 + 50 * y, (H, W, 3)), np.uint8).copy()
    for head, fx, fy, side in faces:
        h = int(side * head.shape[0] / head.shape[1])
        scaled = cv2.resize(head, (side, h), interpolation=cv2.INTER_AREA)
        x0, y0 = int(fx * W - side / 2), int(fy * H - h / 2)
        frame[y0:y0 + h, x0:x0 + side] = scaled
    return frame


@pytest.fixture()
def lane_factory(setup: Setup) -> Iterator[MakeLane]:
    writers: list[StoreWriter] = []

    def make(**lane: object) -> tuple[Lane, list[Outcome]]:
        store = Store.open(setup.db)
        writer = StoreWriter(store)
        writers.append(writer)
        outcomes: list[Outcome] = []
        policy = PolicyConfig(temperature_screening=False, anti_passback_s=0)
        made = Lane(LaneConfig.model_validate(lane), policy, TemperatureConfig(), setup.engine,
                    Whitelist.load(store, setup.engine.model_id), None, None, writer, outcomes.append,
                    gate_id="lane-test")
        return made, outcomes

    yield make
    for w in writers:
        w.close(10)


def feed(lane: Lane, image: Image, n: int) -> None:
    for _ in range(n):
        lane.process(Frame(image, lane.frame_no + 1, time.monotonic()))


def test_only_a_face_inside_the_region_can_trigger(setup: Setup, lane_factory: MakeLane) -> None:
    left = scene((setup.resident, 0.25, 0.5, 260))
    outside, outcomes = lane_factory(region=(0.5, 0.0, 0.5, 1.0))  # the right half of the frame
    feed(outside, left, 8)
    assert len(outside.tracker.tracks) == 1  # seen and tracked ...
    assert outcomes == [] and outside.decisions == 0  # ... but never decided: not where the gate is
    inside, outcomes = lane_factory(region=(0.0, 0.0, 0.5, 1.0))
    feed(inside, left, 8)
    assert [(o.event.decision, o.event.person_id) for o in outcomes] == [("grant", "R001")]


@pytest.mark.parametrize("near", ["resident", "stranger"])
def test_only_the_nearest_face_can_trigger(setup: Setup, lane_factory: MakeLane, near: str) -> None:
    big, small = (setup.resident, setup.stranger) if near == "resident" else (setup.stranger, setup.resident)
    image = scene((big, 0.3, 0.5, 300), (small, 0.78, 0.4, 150))
    lane, outcomes = lane_factory()
    feed(lane, image, 12)
    assert len(lane.tracker.tracks) == 2  # both faces are detected and tracked
    assert len(outcomes) == 1  # one decision, for the nearest face only
    event = outcomes[0].event
    if near == "resident":
        assert (event.decision, event.person_id) == ("grant", "R001")
    else:  # the resident further back is not let in behind the stranger in front
        assert event.decision == "deny" and event.person_id is None
        assert {r["code"] for r in event.reasons} == {"unknown_face"}
    nearest = max(lane.tracker.tracks.values(), key=lambda t: t.det.area)
    assert event.scores is not None and event.scores["track_id"] == nearest.id


@pytest.mark.parametrize("every", [1, 3])
def test_detect_every_nth_frame(setup: Setup, lane_factory: MakeLane, every: int) -> None:
    lane, _ = lane_factory(detect_every=every)
    feed(lane, scene((setup.stranger, 0.5, 0.5, 260)), 9)
    (track,) = lane.tracker.tracks.values()
    assert track.hits == len(range(1, 10, every))  # detections on frames 1, 1 + every, ...
    assert track.last_frame == 9 - (9 - 1) % every


def test_recognise_every_nth_frame_once_the_vote_window_is_full(setup: Setup, lane_factory: MakeLane) -> None:
    # a window of 2 votes can never hold 3 unknown ones: the stranger stays undecided and is re-verified
    lane, outcomes = lane_factory(votes_n=2, stranger_votes=3, recognise_every=4)
    image = scene((setup.stranger, 0.5, 0.5, 300))
    recognised = []
    for _ in range(12):
        feed(lane, image, 1)
        (track,) = lane.tracker.tracks.values()
        if track.recognised_at == lane.frame_no:
            recognised.append(lane.frame_no)
    assert recognised == [1, 2, 6, 10]  # new track: until the window is full; then every 4th frame
    assert len(track.votes) == 2 and outcomes == []
