"""One lane of the gate: frames in, decisions out.

Per frame: detect, track, recognise the nearest person's track (new tracks every frame until the vote
is full, then every N frames), measure the temperature at that face, ask the policy, pulse the relay
on a grant and record the event (with its outbox row) through the store writer. Everything on this
path is in memory; the store is only written, never read, while a person waits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from drivers.relay import InputEvent, Relay, RelayError
from drivers.thermal import Reading, ThermalSensor
from edge.camera import Frame
from edge.config.lane import LaneConfig
from edge.config.policy import PolicyConfig
from edge.config.temperature import TemperatureConfig
from edge.panel_link import GrantHook
from edge.policy import Decision, Identity, TemperatureInput, decide
from edge.store import AlarmRecord, EventRecord, Passage, PersonRecord, Store
from edge.store.writer import StoreWriter
from edge.temperature import TemperatureEstimate, check_liveness, estimate_array, estimate_spot
from edge.vision import FaceEngine, Gallery
from edge.vision.tracker import Track, Tracker, Vote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the lane did for one track, for logs, the demo and the guard page."""

    event: EventRecord
    decision: Decision
    name: str | None
    latency_ms: float | None


@dataclass
class Whitelist:
    """The in-memory view of the store a decision needs; replaced whole on a reload."""

    gallery: Gallery
    persons: dict[str, PersonRecord]
    version: str | None

    @classmethod
    def load(cls, store: Store, model_id: str) -> Whitelist:
        ids, matrix, persons, version = store.load_whitelist(model_id)
        gallery = Gallery(ids, matrix, model_id) if len(ids) else Gallery.empty(model_id)
        del matrix  # the gallery keeps its own (transposed) copy
        return cls(gallery, {p.id: p for p in persons}, version)


_Shown = tuple[tuple[float, float, float, float], str, tuple[int, int, int]]  # box, label, BGR colour


@dataclass(frozen=True)
class _Sample:
    input: TemperatureInput | None
    estimate: TemperatureEstimate | None
    liveness: bool | None
    reading_t: float | None


@dataclass
class _TrackState:
    first_usable_t: float | None = None
    named_t: float | None = None
    fever_first_t: float | None = None
    last_stranger_alarm: datetime | None = None


class Lane:
    def __init__(self, cfg: LaneConfig, policy: PolicyConfig, temperature: TemperatureConfig, engine: FaceEngine,
                 whitelist: Whitelist, thermal: ThermalSensor | None, relay: Relay | None, writer: StoreWriter,
                 on_outcome: Callable[[Outcome], None] | None = None, *, gate_id: str) -> None:
        self.cfg, self.policy, self.temp_cfg, self.gate_id = cfg, policy, temperature, gate_id
        self.engine, self.thermal, self.relay, self.writer = engine, thermal, relay, writer
        self.panel: GrantHook | None = None  # panel mode (edge.panel_link): the panel gets the grant, not the relay
        self.whitelist = whitelist
        self.on_outcome = on_outcome
        self.tracker = Tracker(votes_window=cfg.votes_n)
        self.frame_no = 0
        self._state: dict[int, _TrackState] = {}
        self._passages: dict[str, list[Passage]] = {}
        self._awaiting_pass: list[tuple[float, EventRecord]] = []
        self.passes_matched = 0  # PASS edges matched to a waiting grant
        self._last_grant_t: float | None = None  # time.monotonic() of the last relay pulse for a grant
        self._door_open_t: float | None = None  # since when the door sensor is active (None: closed)
        self._door_held_alarmed = False
        self._peer_seen: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self.last_frame_t: float | None = None
        self.decisions = 0
        self._view: tuple[np.ndarray, list[_Shown]] | None = None

    # -- whitelist and passages ----------------------------------------------------------------
    def swap_whitelist(self, whitelist: Whitelist) -> None:
        """Atomic replacement (a reference swap): recognition never pauses for a reload. A person's `uses`
        is the larger of the reloaded and the in-memory count: uses only grow, and a grant counted here
        may not have reached the store yet when the reload read it."""
        with self._lock:
            old = self.whitelist.persons
            for pid, p in whitelist.persons.items():
                mine = old.get(pid)
                if mine is not None and mine.uses > p.uses:
                    whitelist.persons[pid] = replace(p, uses=mine.uses)
            self.whitelist = whitelist

    def count_use(self, person_id: str) -> None:
        """One more use of the person's pass (a grant here or at a peer gate), at once in memory: the
        store counts the same grant when it writes the event (or the peer's passage)."""
        with self._lock:
            persons = self.whitelist.persons
            p = persons.get(person_id)
            if p is not None:
                persons[person_id] = replace(p, uses=p.uses + 1)

    def note_peer_grant(self, p: Passage) -> bool:
        """A grant at a peer gate: a passage (anti-passback, care watch) and one use, once per passage (a
        redelivered event is recognised and changes nothing). False if it was seen already."""
        key = (p.person_id, p.ts.isoformat(), p.gate_id, p.direction)
        with self._lock:
            if key in self._peer_seen:
                return False
            self._peer_seen[key] = None
            while len(self._peer_seen) > 10_000:
                self._peer_seen.popitem(last=False)
        self.note_passage(p)
        self.count_use(p.person_id)
        return True

    def note_passage(self, p: Passage) -> None:
        """A passage seen here or at a peer gate (anti-passback, care watch)."""
        try:
            keep_after = p.ts - timedelta(seconds=max(self.policy.anti_passback_s, 1.0))
        except OverflowError:  # a passage dated at the first representable instant (a peer gate's clock)
            keep_after = p.ts
        with self._lock:
            self._passages[p.person_id] = [x for x in self._passages.get(p.person_id, []) if x.ts >= keep_after] + [p]

    # -- the frame loop ----------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[Outcome]:
        self.frame_no += 1
        self.last_frame_t = frame.t
        if (self.frame_no - 1) % self.cfg.detect_every:
            return []
        dets = self.engine.detect(frame.image)
        tracks = self.tracker.update(dets, self.frame_no, frame.t)
        for tid in [t for t in self._state if t not in self.tracker.tracks]:
            del self._state[tid]
        nearest = next((t for t in tracks if self._in_region(t, frame)), None)
        outcome = None
        if nearest is not None and not nearest.decided:
            state = self._state.setdefault(nearest.id, _TrackState())
            if self.tracker.needs_recognition(nearest, self.frame_no, self.cfg.recognise_every):
                self._recognise(frame, nearest, state)
            outcome = self._maybe_decide(frame, nearest, state)
        self._remember_view(frame, tracks)
        return [outcome] if outcome else []

    def preview_jpeg(self, quality: int = 75) -> bytes | None:
        """The latest frame with the current tracks drawn on a copy (green: named, red: stranger)."""
        view = self._view
        if view is None:
            return None
        image, tracks = view
        canvas = image.copy()
        for bbox, label, color in tracks:
            x, y, w, h = (int(v) for v in bbox)
            cv2.rectangle(canvas, (x, y), (x + w, y + h), color, 2)
            if label:
                cv2.putText(canvas, label, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return bytes(buf) if ok else None

    def _remember_view(self, frame: Frame, tracks: list[Track]) -> None:
        shown = []
        for t in tracks:
            person_id, _, _ = t.identity(self.cfg.votes_k)
            person = self.whitelist.persons.get(person_id) if person_id else None
            if person is not None:
                shown.append((t.det.bbox, person.name, (0, 200, 0)))
            elif t.unknown_votes() >= self.cfg.stranger_votes:
                shown.append((t.det.bbox, "unknown", (0, 0, 230)))
            else:
                shown.append((t.det.bbox, "", (200, 200, 200)))
        self._view = (frame.image, shown)

    def _in_region(self, track: Track, frame: Frame) -> bool:
        h, w = frame.image.shape[:2]
        x, y, bw, bh = track.det.bbox
        cx, cy = (x + bw / 2) / w, (y + bh / 2) / h
        rx, ry, rw, rh = self.cfg.region
        return bool(rx <= cx <= rx + rw and ry <= cy <= ry + rh)

    def _recognise(self, frame: Frame, track: Track, state: _TrackState) -> None:
        track.recognised_at = self.frame_no
        face = self.engine.faces(frame.image, [track.det])[0]
        if face.quality is None or not face.quality.ok:
            return  # an unusable face neither names nor condemns anyone
        if state.first_usable_t is None:
            state.first_usable_t = frame.t
        match = self.engine.identify(face.embedding, self.whitelist.gallery)
        track.votes.append(Vote(match.person_id, match.score, match.margin))

    def _maybe_decide(self, frame: Frame, track: Track, state: _TrackState) -> Outcome | None:
        person_id, agreeing, best = track.identity(self.cfg.votes_k)
        if person_id is None and track.unknown_votes() < self.cfg.stranger_votes:
            return None
        now = datetime.now(UTC)
        if person_id is not None and state.named_t is None:
            state.named_t = time.monotonic()
        sample = self._temperature(track, state)
        temp, estimate = sample.input, sample.estimate
        waited = time.monotonic() - (state.named_t or time.monotonic())
        if person_id is not None and estimate is not None and not estimate.valid \
                and waited < self.cfg.temperature_wait_s:
            return None  # e.g. still too far away for a valid reading: wait a little
        identity = Identity(person_id, best.score if best else 0.0, best.margin if best else 0.0, agreeing,
                            len(track.votes), track.id)
        with self._lock:
            passages = list(self._passages.get(person_id or "", []))
        person = self.whitelist.persons.get(person_id) if person_id else None
        decision = decide(self.policy, gate_id=self.gate_id, identity=identity, person=person, temperature=temp,
                          liveness=sample.liveness, now=now, passages=passages,
                          last_stranger_alarm=state.last_stranger_alarm)
        if decision.outcome == "recheck":  # a first high reading: decide on the next, newer one
            if state.fever_first_t is None and sample.reading_t is not None:
                state.fever_first_t = sample.reading_t
            return None
        return self._act(frame, track, state, decision, identity, person, estimate, now)

    def _temperature(self, track: Track, state: _TrackState) -> _Sample:
        if not self.policy.temperature_screening:
            return _Sample(None, None, None, None)
        reading: Reading | None = self.thermal.read() if self.thermal is not None else None
        if reading is None:
            return _Sample(None, None, None, None)
        w = track.det.bbox[2]
        liveness: bool | None = None
        if reading.frame is not None:
            est = estimate_array(reading.frame, track.det.bbox, track.det.landmarks, self.temp_cfg,
                                 ambient_c=reading.ambient_c)
            liveness = check_liveness(reading.frame, track.det.bbox, self.temp_cfg).live
        else:
            est = estimate_spot(reading.object_c, reading.ambient_c, w, self.temp_cfg)
        confirmed = False
        if state.fever_first_t is not None:
            # the confirming reading must be a newer one than the first high reading
            confirmed = reading.t > state.fever_first_t
        age = max(0.0, time.monotonic() - reading.t)
        fault = None if est.valid else est.reason
        return _Sample(TemperatureInput(est.body_c if est.valid else None, age, confirmed, fault), est, liveness,
                       reading.t)

    def _act(self, frame: Frame, track: Track, state: _TrackState, decision: Decision, identity: Identity,
             person: PersonRecord | None, estimate: TemperatureEstimate | None, now: datetime) -> Outcome:
        track.decided = True
        alarms = [AlarmRecord(ts=now, kind=a.kind, severity=a.severity, message=a.message, details=a.params,
                              gate_id=self.gate_id, person_id=identity.person_id) for a in decision.alarms]
        latency_ms = None
        if decision.outcome == "grant" and self.panel is not None:
            self.panel.on_grant(person)
        elif decision.outcome == "grant" and self.relay is not None:
            try:
                self.relay.pulse(self.cfg.relay_pulse_ms)
            except RelayError as exc:
                log.error("relay pulse failed: %s", exc)
                alarms.append(AlarmRecord(ts=now, kind="relay_fault", severity="high", message=str(exc),
                                          gate_id=self.gate_id, person_id=identity.person_id))
        if state.first_usable_t is not None:
            latency_ms = (time.monotonic() - state.first_usable_t) * 1000.0
        if any(a.kind == "stranger" for a in decision.alarms):
            state.last_stranger_alarm = now
        scores = {"score": round(identity.score, 4), "margin": round(identity.margin, 4), "votes": identity.votes,
                  "window": identity.window, "track_id": track.id,
                  "latency_ms": None if latency_ms is None else round(latency_ms, 1),
                  "face_px": round(track.det.bbox[2], 1)}
        event = EventRecord(ts=now, gate_id=self.gate_id, direction=self.policy.direction,
                            decision="grant" if decision.outcome == "grant" else "deny",
                            person_id=identity.person_id, reasons=tuple(_reason_dict(r) for r in decision.reasons),
                            alarms=tuple(a.to_dict() for a in alarms), temperature=_temperature_dict(estimate),
                            scores=scores)
        # a write the disk refuses is kept in memory and written once it accepts writes again
        self.writer.submit_kept(self.writer.store.record_event, event, alarms=alarms)
        if self.writer.store.snapshots:  # privacy: only when configured, and only the face crop
            crop = face_crop_jpeg(frame.image, track.det.bbox)
            if crop is not None:
                self.writer.submit(self.writer.store.add_snapshot, event.event_id, crop)
        if event.decision == "grant" and identity.person_id is not None:
            self.note_passage(Passage(identity.person_id, now, self.gate_id, self.policy.direction))
            self.count_use(identity.person_id)  # max_uses holds from the next face on, not from the next reload
            self.expect_passage(event)
        self.decisions += 1
        outcome = Outcome(event, decision, person.name if person else None, latency_ms)
        if self.on_outcome:
            self.on_outcome(outcome)
        return outcome

    # -- turnstile feedback ------------------------------------------------------------------------
    def expect_passage(self, event: EventRecord) -> None:
        """The relay was pulsed for this grant (a face, or a guard's manual open): a PASS should follow."""
        now = time.monotonic()
        with self._lock:
            self._last_grant_t = now
            self._awaiting_pass.append((now, event))

    def on_relay_events(self, events: list[InputEvent]) -> list[AlarmRecord]:
        """Input edges from the relay board. PASS: matched to a waiting grant; a passage with none waiting
        is tailgating or forced entry. Door: opening with no grant in the last pass_timeout_s is forced."""
        alarms = []
        now_utc = datetime.now(UTC)
        for ev in events:
            if ev.name == "door":
                alarm = self._door_event(ev, now_utc)
                if alarm is not None:
                    alarms.append(alarm)
                continue
            if ev.name != "pass" or not ev.active:
                continue
            with self._lock:
                waiting = [g for g in self._awaiting_pass if g[0] <= ev.t]
                if waiting:
                    self._awaiting_pass.remove(waiting[0])
                    self.passes_matched += 1
                    continue
            alarms.append(AlarmRecord(ts=now_utc, kind="passage_without_grant", severity="high",
                                      message=f"passage without a grant at {self.gate_id} "
                                      "(tailgating or forced entry)",
                                      gate_id=self.gate_id))
        return alarms

    @property
    def door_open(self) -> bool:
        """The door sensor, as the last input edge from the relay board said (False before any)."""
        with self._lock:
            return self._door_open_t is not None

    def _door_event(self, ev: InputEvent, now_utc: datetime) -> AlarmRecord | None:
        with self._lock:
            if not ev.active:
                self._door_open_t, self._door_held_alarmed = None, False
                return None
            if self._door_open_t is not None:
                return None
            self._door_open_t = ev.t
            granted = self._last_grant_t is not None and ev.t - self._last_grant_t <= self.cfg.pass_timeout_s
        if granted or (self.relay is not None and self.relay.state) or not self.cfg.door_forced_alarm:
            return None
        return AlarmRecord(ts=now_utc, kind="door_forced", severity="high",
                           message=f"door opened without a grant at {self.gate_id}",
                           gate_id=self.gate_id)

    def door_held(self) -> list[AlarmRecord]:
        """The door sensor active longer than door_held_s: one alarm per opening."""
        with self._lock:
            opened = self._door_open_t
            if opened is None or self._door_held_alarmed or self.cfg.door_held_s <= 0:
                return []
            open_s = time.monotonic() - opened
            if open_s < self.cfg.door_held_s:
                return []
            self._door_held_alarmed = True
        return [AlarmRecord(ts=datetime.now(UTC), kind="door_held", severity="warning",
                            message=f"door held open for over {self.cfg.door_held_s:g} s at {self.gate_id}",
                            gate_id=self.gate_id, details={"open_s": round(open_s, 1)})]

    def expired_grants(self, has_pass_input: bool) -> list[AlarmRecord]:
        """Grants nobody passed through within the timeout ('granted, not passed')."""
        if not has_pass_input:
            with self._lock:
                self._awaiting_pass.clear()
            return []
        now = time.monotonic()
        with self._lock:
            expired = [g for g in self._awaiting_pass if now - g[0] > self.cfg.pass_timeout_s]
            self._awaiting_pass = [g for g in self._awaiting_pass if g not in expired]
        return [AlarmRecord(ts=datetime.now(UTC), kind="granted_not_passed", severity="info",
                            message=f"{ev.person_id or 'manual open'} was let in but did not pass",
                            gate_id=self.gate_id, person_id=ev.person_id, details={"event_id": ev.event_id})
                for _, ev in expired]


def face_crop_jpeg(image: np.ndarray, bbox: tuple[float, float, float, float], pad: float = 0.25) -> bytes | None:
    """The face box (with a little margin) as JPEG bytes; nothing else of the frame is kept."""
    h, w = image.shape[:2]
    x, y, bw, bh = bbox
    x0, y0 = max(0, int(x - pad * bw)), max(0, int(y - pad * bh))
    x1, y1 = min(w, int(x + bw * (1 + pad))), min(h, int(y + bh * (1 + pad)))
    if x1 <= x0 or y1 <= y0:
        return None
    ok, buf = cv2.imencode(".jpg", image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return bytes(buf) if ok else None


def _reason_dict(r: object) -> dict[str, object]:
    code = getattr(r, "code", str(r))
    return {"code": code, "effect": getattr(r, "effect", None), "params": dict(getattr(r, "params", {}) or {})}


# Estimate fields the event payload (protocol v2, a closed model) does not carry: the sensor's calibrated
# correction is in the gate's config ([temperature.calibration]) and already in body_c.
UNPUBLISHED_ESTIMATE_FIELDS = frozenset({"sensor_correction_c"})


def _temperature_dict(est: TemperatureEstimate | None) -> dict[str, object] | None:
    if est is None:
        return None
    out: dict[str, object] = {}
    for k, v in est.__dict__.items():
        if k in UNPUBLISHED_ESTIMATE_FIELDS:
            continue
        if k == "region":
            out["region_pixels"] = len(v)
        elif isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif isinstance(v, np.floating):
            out[k] = float(v)
        else:
            out[k] = v
    return out
