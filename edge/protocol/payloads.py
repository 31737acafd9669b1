"""The JSON documents a gate publishes (event, alarm, state, whitelist ack), each signed by the gate's
own key, and the admin's unsigned `whitelist/current` pointer, as closed pydantic models (an unknown
member anywhere is refused); each carries `schema` ("edge-gate/<kind>/<major>"). The signed
whitelist pushes are in `edge.protocol.messages`. docs/protocol.md explains every field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.protocol.limits import MAX_ACK_NOTES

EVENT_SCHEMA = "edge-gate/event/2"
ALARM_SCHEMA = "edge-gate/alarm/2"
STATE_SCHEMA = "edge-gate/state/2"
ACK_SCHEMA = "edge-gate/whitelist-ack/2"
CURRENT_SCHEMA = "edge-gate/whitelist-current/2"
HUB_STATE_SCHEMA = "edge-gate/hub-state/2"
PASSAGES_REQUEST_SCHEMA = "edge-gate/passages-request/2"
PASSAGES_SCHEMA = "edge-gate/passages/2"
MAX_BACKFILL = 5000
V1_SCHEMAS = {"edge-gate/event/1": EVENT_SCHEMA, "edge-gate/alarm/1": ALARM_SCHEMA}  # rows queued by a v1 gate
LEVEL = r"^[A-Za-z0-9_.-]{1,64}$"
ReasonCode = Literal["ok", "unknown_face", "not_enrolled", "invalid_input", "spoof_suspected", "liveness_unavailable",
                     "suspended", "blocked", "not_yet_valid", "expired", "uses_exhausted", "gate_not_allowed",
                     "direction_not_allowed", "outside_schedule", "anti_passback", "sensor_fault",
                     "stale_temperature", "fever", "fever_unconfirmed", "manual_open", "exit_button"]
Severity = Literal["info", "warning", "high", "critical"]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("a time needs its offset (the gate writes UTC with Z)")
    return v


def _aware_or_none(v: datetime | None) -> datetime | None:
    return None if v is None else _aware(v)


class Signature(Doc):
    """Ed25519 over the RFC 8785 form of the message without this member (docs/protocol.md)."""

    alg: Literal["ed25519"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="First 16 hex digits of SHA-256 of the raw key.")
    value: str = Field(max_length=100, description="Standard base64 of the 64-byte signature.")


class Reason(Doc):
    code: ReasonCode
    effect: Literal["allow", "deny", "recheck"] | None = Field(description="What this reason did to the decision.")
    params: dict[str, Any] = Field(description="The reason's figures (docs/protocol.md lists them per code).")


class EventAlarm(Doc):
    """An alarm raised with a decision (the same alarm is also published on `alarms`)."""

    id: str = Field(min_length=1, max_length=64)
    ts: datetime
    kind: str = Field(min_length=1, max_length=64)
    severity: Severity
    message: str = Field(max_length=1000)
    details: dict[str, Any]
    gate_id: str | None = None
    person_id: str | None = None
    count: int | None = Field(None, ge=1, description="Absent: 1 (see the alarms topic).")
    last_seen: datetime | None = Field(None, description="Absent: the same as ts.")

    _last_seen = field_validator("last_seen")(_aware_or_none)


class Temperature(Doc):
    body_c: float | None
    raw_c: float | None
    source: Literal["spot", "array"]
    offset_c: float | None
    ambient_c: float | None
    ambient_correction_c: float | None
    face_width_px: float | None
    distance_m: float | None
    distance_correction_c: float | None
    blackbody_correction_c: float | None
    region_pixels: int = Field(ge=0, description="Thermal pixels measured (array sensors; 0 for a spot).")
    valid: bool
    reason: str | None = None


class Scores(Doc):
    score: float | None = Field(None, description="Cosine similarity of the best candidate.")
    margin: float | None = Field(None, description="Best minus second-best score.")
    votes: int | None = Field(None, description="Recognitions of this track that agreed.")
    window: int | None = Field(None, description="Recognitions looked at for the vote.")
    track_id: int | None = None
    latency_ms: float | None = Field(None, description="First usable frame of the face to the decision.")
    face_px: float | None = Field(None, description="Face width in the frame, pixels.")
    guard: str | None = Field(None, description="Manual open: the guard who opened.")


class EventMessage(Doc):
    """One access decision, published QoS 1 on `events`; servers drop duplicates by `event_id`."""

    schema_: Literal["edge-gate/event/2"] = Field(alias="schema")
    event_id: str = Field(min_length=1, max_length=64, description="Stable id (ULID); the same on a re-send.")
    ts: datetime = Field(description="Decision time, UTC (`...Z`).")
    gate_id: str = Field(pattern=LEVEL)
    direction: Literal["in", "out"]
    person_id: str | None = Field(None, max_length=64, description="Null: nobody recognised.")
    decision: Literal["grant", "deny"]
    reasons: list[Reason] = Field(description="Why, in the policy's order.")
    alarms: list[EventAlarm] = Field(description="Alarms raised with this decision.")
    temperature: Temperature | None = None
    scores: Scores | None = None
    signature: Signature

    _ts = field_validator("ts")(_aware)


class AlarmMessage(Doc):
    """An alarm (fever, stranger, care watch, rejected push, forged message...), QoS 1 on `alarms`."""

    schema_: Literal["edge-gate/alarm/2"] = Field(alias="schema")
    id: str = Field(min_length=1, max_length=64)
    ts: datetime
    kind: str = Field(min_length=1, max_length=64, description="docs/protocol.md lists the kinds and details.")
    severity: Severity
    message: str = Field(max_length=1000, description="English text for logs; clients render from kind + details.")
    details: dict[str, Any]
    gate_id: str | None = None
    person_id: str | None = None
    count: int | None = Field(None, ge=1, description="Occurrences of this alarm's source grouped under this id "
                              "(absent: 1). A later message with the same id and a higher count is an update "
                              "of the same alarm: keep the highest.")
    last_seen: datetime | None = Field(None, description="When the latest of them was raised (absent: ts, the "
                                       "first).")
    signature: Signature

    _times = field_validator("ts", "last_seen")(_aware_or_none)


class CameraState(Doc):
    ok: bool
    fps: float
    skipped_fps: float
    frames: int
    dropped: int
    frozen: bool
    black: bool
    stale: bool
    error: str | None
    age_s: float | None


class ThermalState(Doc):
    ok: bool
    age_s: float | None
    checksum_failures: int
    error: str | None


class RelayState(Doc):
    ok: bool
    on: bool
    pulses: int
    error: str | None


class VisionState(Doc):
    alive: bool
    decisions: int


class StoreState(Doc):
    ok: bool
    error: str | None
    pending: int
    kept: int
    lost: int


class WhitelistState(Doc):
    version: int = Field(ge=0, description="The applied whitelist version (0: none yet).")
    persons: int
    templates: int
    model: str
    need_snapshot: bool = Field(description="The gate is asking for a snapshot (and re-asks until it gets one).")
    member_gates: int = Field(ge=0, description="Gates of the community whose events this gate accepts.")


class PartState(Doc):
    ok: bool
    detail: str


class SyncState(Doc):
    connected: bool
    connected_since: str | None
    published: int
    acked: int
    failed: int
    connects: int
    pushes: int
    peer_events: int
    peer_rejected: int = Field(description="Peer events refused: malformed, unsigned, forged, unlisted, future.")
    intake_shed: int = Field(description="Incoming messages shed unread under a flood (counted, alarmed).")
    last_error: str | None
    inflight: int
    outbox_depth: int | None


class StateMessage(Doc):
    """Retained, signed health document on `state` (republished every `state_interval_s`). The parts a
    process does not have (a fleet simulator has no camera) are left out; `sync` is always there."""

    schema_: Literal["edge-gate/state/2"] = Field(alias="schema")
    gate: str = Field(pattern=LEVEL)
    community: str = Field(pattern=LEVEL)
    ts: datetime
    software_version: str = Field(min_length=1, description="The gate's edge-gate version.")
    uptime_s: float | None = None
    camera: CameraState | None = None
    thermal: ThermalState | None = None
    relay: RelayState | None = None
    vision: VisionState | None = None
    outbox_depth: int | None = None
    store: StoreState | None = None
    whitelist: WhitelistState | None = None
    health: dict[str, PartState] | None = None
    sync: SyncState
    signature: Signature

    _ts = field_validator("ts")(_aware)


class AckCounts(Doc):
    upserted: int = 0
    patched: int = 0
    deleted: int = 0
    templates: int = 0


class AckError(Doc):
    id: str | None = Field(description="Person id the error is about (null: the whole push).")
    code: str
    message: str
    applied: bool = Field(False, description="True: the person's record was applied, only their templates "
                          "were not (left as they were); false: the entry was skipped.")


class AckNote(Doc):
    """Something about one entry that was applied as asked but that the admin should know."""

    id: str = Field(description="Person id the note is about.")
    code: Literal["not_found"] = Field(description="not_found: a delete of a person this gate did not have; "
                                       "the person is absent, as asked, and nothing was deleted.")


class WhitelistAck(Doc):
    """The gate's signed answer to a push, or its own snapshot request (retained per gate on `whitelist/ack`)."""

    schema_: Literal["edge-gate/whitelist-ack/2"] = Field(alias="schema")
    gate: str = Field(pattern=LEVEL)
    community: str
    ts: datetime
    kind: Literal["snapshot", "delta", "current", "unknown", "request"] = Field(
        description="What is answered; `request`: the gate asks for a snapshot on its own (re-ask).")
    version: int | None = Field(description="Version of the push answered (null if unreadable, or a request).")
    push_digest: str | None = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the exact payload "
                                    "bytes answered (the last chunk for a snapshot); null for a request.")
    current_version: int = Field(ge=0, description="The gate's whitelist version after handling the push.")
    status: Literal["applied", "rejected", "outdated"] = Field(
        description="applied; rejected (store untouched); outdated: the gate is behind and needs a snapshot.")
    code: str = Field(description="`ok` or the rejection code (docs/protocol.md).")
    message: str
    need_snapshot: bool = Field(False, description="The gate asks for a full snapshot (gap, or behind).")
    counts: AckCounts = Field(default_factory=AckCounts)
    errors: list[AckError] = Field(default_factory=list, description="Per-entry problems.")
    notes: list[AckNote] = Field(default_factory=list, max_length=MAX_ACK_NOTES, description="Per-entry notes on "
                                 f"an applied push (at most {MAX_ACK_NOTES}; the message gives the total). "
                                 "Left out when there are none, as older gates always leave it out.")
    signature: Signature

    _ts = field_validator("ts")(_aware)


class WhitelistCurrent(Doc):
    """Retained pointer an admin or the hub publishes on `{prefix}/{community}/whitelist/current`: the
    newest version. Unsigned: it only makes a gate that is behind ask for a snapshot, it changes nothing."""

    schema_: Literal["edge-gate/whitelist-current/2"] = Field(alias="schema")
    version: int = Field(ge=1)
    issued_at: datetime | None = None


class HubState(Doc):
    """Retained on `{prefix}/{community}/hub/state` by the community hub, signed by its admin key, every 30 s
    (cleared when the hub goes away). While a fresh one says `care_watch`, gates leave the care-watch
    alarm to the hub (one alarm for the community) and raise their own only when it is gone."""

    schema_: Literal["edge-gate/hub-state/2"] = Field(alias="schema")
    community: str = Field(pattern=LEVEL)
    ts: datetime
    version: int = Field(ge=0, description="The register's whitelist version.")
    care_watch: bool = Field(description="The hub raises the community's care-watch alarms.")
    interval_s: float = Field(gt=0, description="How often the hub republishes this; stale after 3 times it.")
    signature: Signature

    _ts = field_validator("ts")(_aware)


class PassagesRequest(Doc):
    """A gate that was away asks the hub, on `{gate}/passages/request`, for the grants at the other gates it
    may have missed (anti-passback, visitors' uses, care watch); signed by the gate."""

    schema_: Literal["edge-gate/passages-request/2"] = Field(alias="schema")
    gate: str = Field(pattern=LEVEL)
    since: datetime = Field(description="The oldest passage wanted (when the gate was last connected).")
    ts: datetime
    signature: Signature

    _times = field_validator("since", "ts")(_aware)


class PassageDoc(Doc):
    person_id: str = Field(min_length=1, max_length=64)
    ts: datetime
    gate_id: str = Field(pattern=LEVEL)
    direction: Literal["in", "out"]

    _ts = field_validator("ts")(_aware)


class Passages(Doc):
    """The hub's answer on `{gate}/passages`, signed by the admin key: the other gates' grants since
    `since`, oldest first; `more` when there were more than fit (the gate asks again from the last one)."""

    schema_: Literal["edge-gate/passages/2"] = Field(alias="schema")
    community: str = Field(pattern=LEVEL)
    gate: str = Field(pattern=LEVEL)
    since: datetime
    passages: list[PassageDoc] = Field(max_length=MAX_BACKFILL)
    more: bool
    ts: datetime
    signature: Signature

    _times = field_validator("since", "ts")(_aware)
