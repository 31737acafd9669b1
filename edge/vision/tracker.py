"""Face tracks across frames (IoU matching) and the multi-frame vote that names a track.

A track is recognised when it is new and re-verified every N frames; a name is given only when k of
the last n recognitions agree on the same person, so one lucky frame never opens the gate for a
stranger, and one bad frame never flips a resident's name.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from edge.vision.face import Detection


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Vote:
    person_id: str | None
    score: float
    margin: float


@dataclass
class Track:
    id: int
    det: Detection
    first_frame: int
    last_frame: int
    first_t: float
    hits: int = 1
    recognised_at: int | None = None
    votes: deque[Vote] = field(default_factory=lambda: deque(maxlen=5))
    decided: bool = False  # a decision (grant/deny) was taken for this track
    last_alarm_t: float | None = None

    def identity(self, k: int) -> tuple[str | None, int, Vote | None]:
        """(person, agreeing votes, best vote) when k of the recent votes name the same person."""
        named = Counter(v.person_id for v in self.votes if v.person_id is not None)
        if not named:
            return None, 0, None
        person, count = named.most_common(1)[0]
        best = max((v for v in self.votes if v.person_id == person), key=lambda v: v.score)
        return (person if count >= k else None), count, best

    def unknown_votes(self) -> int:
        return sum(1 for v in self.votes if v.person_id is None)


class Tracker:
    """Greedy IoU association of detections to tracks; tracks unseen for `max_missed` frames end."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, votes_window: int = 5) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.votes_window = votes_window
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, dets: list[Detection], frame: int, t: float) -> list[Track]:
        """Associate this frame's detections; return the tracks seen in this frame, largest face first."""
        pairs = sorted(((iou(tr.det.bbox, d.bbox), tid, di) for tid, tr in self.tracks.items()
                        for di, d in enumerate(dets)), reverse=True)
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for overlap, tid, di in pairs:
            if overlap < self.iou_threshold:
                break
            if tid in used_tracks or di in used_dets:
                continue
            tr = self.tracks[tid]
            tr.det, tr.last_frame = dets[di], frame
            tr.hits += 1
            used_tracks.add(tid)
            used_dets.add(di)
        for di, d in enumerate(dets):
            if di not in used_dets:
                tr = Track(id=self._next_id, det=d, first_frame=frame, last_frame=frame, first_t=t,
                           votes=deque(maxlen=self.votes_window))
                self.tracks[tr.id] = tr
                self._next_id += 1
                used_tracks.add(tr.id)
        for tid in [tid for tid, tr in self.tracks.items() if frame - tr.last_frame > self.max_missed]:
            del self.tracks[tid]
        seen = [self.tracks[tid] for tid in used_tracks]
        return sorted(seen, key=lambda tr: tr.det.area, reverse=True)

    def needs_recognition(self, track: Track, frame: int, every: int) -> bool:
        return track.recognised_at is None or frame - track.recognised_at >= every or (
            len(track.votes) < self.votes_window and not track.decided)
