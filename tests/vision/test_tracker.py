"""IoU tracking and the k-of-n vote that names a track."""

from __future__ import annotations

import numpy as np

from edge.vision.face import Detection
from edge.vision.tracker import Tracker, Vote, iou


def det(x: float, y: float, s: float = 100.0) -> Detection:
    return Detection(bbox=(x, y, s, s), score=0.9, landmarks=np.zeros((5, 2), np.float32))


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 10, 10)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_a_walking_face_keeps_its_track_and_a_new_face_gets_a_new_one() -> None:
    tr = Tracker()
    ids = set()
    for f in range(10):
        seen = tr.update([det(100 + 8 * f, 100)], f, f / 15)
        ids.add(seen[0].id)
    assert len(ids) == 1
    seen = tr.update([det(180, 100), det(400, 300, 60)], 10, 10 / 15)
    assert len(seen) == 2 and seen[0].id in ids and seen[1].id not in ids
    assert seen[0].det.area > seen[1].det.area  # largest (nearest) first


def test_tracks_end_after_missed_frames() -> None:
    tr = Tracker(max_missed=3)
    first = tr.update([det(0, 0)], 0, 0.0)[0].id
    for f in range(1, 5):
        tr.update([], f, f / 15)
    again = tr.update([det(0, 0)], 5, 5 / 15)[0].id
    assert again != first


def test_k_of_n_vote() -> None:
    tr = Tracker()
    track = tr.update([det(0, 0)], 0, 0.0)[0]
    assert tr.needs_recognition(track, 0, every=10)
    track.votes.extend([Vote("alice", 0.6, 0.2), Vote(None, 0.3, 0.0)])
    assert track.identity(k=2)[0] is None  # one lucky frame is not enough
    track.votes.append(Vote("alice", 0.7, 0.3))
    person, count, best = track.identity(k=2)
    assert person == "alice" and count == 2 and best is not None and best.score == 0.7
    track.votes.extend([Vote("bob", 0.55, 0.1)] * 1)
    assert track.identity(k=2)[0] == "alice"
