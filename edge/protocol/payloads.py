"""The JSON documents a gate publishes (event, alarm, state, whitelist ack) and the admin's unsigned
`whitelist/current` pointer, as strict pydantic models; each carries `schema` ("edge-gate/<kind>/<major>").
The signed whitelist pushes are in `edge.protocol.messages`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_SCHEMA = "edge-gate/event/1"
ALARM_SCHEMA = "edge-gate/alarm/1"
STATE_SCHEMA = "edge-gate/state/1"
ACK_SCHEMA = "edge-gate/whitelist-ack/1"
CURRENT_SCHEMA = "edge-gate/whitelist-current/1"
LEVEL = r"^[A-Za-z0-9_.-]{1,64}$"


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EventMessage(Doc):
    """One access decision, published QoS 1 on `events`; servers drop duplicates by `event_id`."""

    schema_: Literal["edge-gate/event/1"] = Field(alias="schema")
    event_id: str = Field(min_length=1, max_length=64, description="Stable id (ULID); the same on a re-send.")
    ts: datetime = Field(description="Decision time, UTC.")
    gate_id: str = Field(pattern=LEVEL)
    direction: Literal["in", "out"]
    person_id: str | None = Field(None, max_length=64, description="Null: nobody recognised.")
    decision: Literal["grant", "deny"]
    reasons: list[dict[str, Any]] = Field(description="Why: policy reasons, each an object with a `code`.")
    alarms: list[dict[str, Any]] = Field(description="Alarms raised with this decision.")
    temperature: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None


class AlarmMessage(Doc):
    """An alarm (fever, tailgating, care watch, rejected push...), published QoS 1 on `alarms`."""

    schema_: Literal["edge-gate/alarm/1"] = Field(alias="schema")
    id: str = Field(min_length=1, max_length=64)
    ts: datetime
    kind: str = Field(min_length=1, max_length=64)
    severity: Literal["info", "warning", "high", "critical"]
    message: str = Field(max_length=1000)
    details: dict[str, Any]
    gate_id: str | None = None
    person_id: str | None = None


class StateMessage(Doc):
    """Retained health document on `state`; `sync` is the MQTT side, the rest comes from the gate."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    schema_: Literal["edge-gate/state/1"] = Field(alias="schema")
    gate: str
    ts: datetime
    software_version: str = Field(min_length=1, description="The gate's edge-gate version (edge.__version__).")
    sync: dict[str, Any] = Field(description="connected, outbox depth, published/acked counters, last error.")


class AckCounts(Doc):
    upserted: int = 0
    deleted: int = 0
    templates: int = 0


class AckError(Doc):
    id: str | None = Field(description="Person id the error is about (null: the whole push).")
    code: str
    message: str
    applied: bool = Field(False, description="True: the person's record was applied, only their templates "
                          "were not (left as they were); false: the entry was skipped.")


class WhitelistAck(Doc):
    """The gate's answer to a whitelist push (retained per gate on `whitelist/ack`)."""

    schema_: Literal["edge-gate/whitelist-ack/1"] = Field(alias="schema")
    gate: str
    community: str
    ts: datetime
    kind: Literal["snapshot", "delta", "current", "unknown"]
    version: int | None = Field(description="Version of the push answered (null if unreadable).")
    current_version: int = Field(description="The gate's whitelist version after handling the push.")
    status: Literal["applied", "rejected", "outdated"] = Field(
        description="applied; rejected (store untouched); outdated: the gate is behind `whitelist/current`.")
    code: str = Field(description="`ok` or the rejection code (bad_signature, old_version, version_gap, ...).")
    message: str
    need_snapshot: bool = Field(False, description="The gate asks for a full snapshot (gap, or behind).")
    counts: AckCounts = Field(default_factory=AckCounts)
    errors: list[AckError] = Field(default_factory=list, description="Per-entry problems.")


class WhitelistCurrent(Doc):
    """Retained pointer admins publish on `{prefix}/{community}/whitelist/current`: the newest version.
    Unsigned: it only makes a gate that is behind ask for a snapshot, it changes nothing itself."""

    schema_: Literal["edge-gate/whitelist-current/1"] = Field(alias="schema")
    version: int = Field(ge=1)
    issued_at: datetime | None = None
