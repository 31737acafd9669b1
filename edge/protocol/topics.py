"""MQTT topic names and the JSON documents the gate publishes on them (event, alarm, state, ack,
the admin's `whitelist/current` pointer), with `write_schemas(dir)` for the docs/schemas files.

Gate topics: `{prefix}/{community}/{gate}/{available|state|events|alarms|whitelist/ack}`.
Admin topics: `{prefix}/{community}/whitelist/{snapshot|delta|current}` and per gate
`{prefix}/{community}/{gate}/whitelist/{snapshot|delta}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.protocol.messages import json_schemas as push_schemas

EVENT_SCHEMA = "edge-gate/event/1"
ALARM_SCHEMA = "edge-gate/alarm/1"
STATE_SCHEMA = "edge-gate/state/1"
ACK_SCHEMA = "edge-gate/whitelist-ack/1"
CURRENT_SCHEMA = "edge-gate/whitelist-current/1"
LEVEL = r"^[A-Za-z0-9_.-]{1,64}$"


@dataclass(frozen=True)
class Topics:
    """Every topic one gate uses."""

    prefix: str
    community: str
    gate: str

    def __post_init__(self) -> None:
        for name in ("community", "gate"):
            value = getattr(self, name)
            if not value or any(c in value for c in "/+#") or value == "whitelist":
                raise ValueError(f"{name} {value!r} cannot be an MQTT topic level")

    @property
    def community_base(self) -> str:
        return f"{self.prefix}/{self.community}"

    @property
    def base(self) -> str:
        return f"{self.community_base}/{self.gate}"

    @property
    def available(self) -> str:
        return f"{self.base}/available"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def alarms(self) -> str:
        return f"{self.base}/alarms"

    @property
    def whitelist_ack(self) -> str:
        return f"{self.base}/whitelist/ack"

    def outbox(self, topic_kind: str) -> str | None:
        """Where an outbox row of this kind goes (None: a kind this gate does not publish)."""
        return {"event": self.events, "alarm": self.alarms}.get(topic_kind)

    @property
    def whitelist_push(self) -> list[str]:
        """Admin pushes this gate takes: the community's and its own snapshot and delta topics."""
        return [f"{b}/whitelist/{k}" for b in (self.community_base, self.base) for k in ("snapshot", "delta")]

    @property
    def whitelist_current(self) -> str:
        return f"{self.community_base}/whitelist/current"

    @property
    def peer_events(self) -> str:
        """Passage events of every gate of the community (care watch, cross-gate anti-passback)."""
        return f"{self.community_base}/+/events"

    def gate_of(self, topic: str) -> str | None:
        """The gate level of a `{prefix}/{community}/{gate}/...` topic, or None for another tree."""
        head = self.community_base + "/"
        if not topic.startswith(head):
            return None
        level = topic[len(head):].split("/", 1)[0]
        return level or None


# ------------------------------------------------------------------------------ payload documents


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


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every payload's JSON Schema, by file name."""
    docs: dict[str, dict[str, Any]] = dict(push_schemas())
    for name, model in (("event", EventMessage), ("alarm", AlarmMessage), ("state", StateMessage),
                        ("whitelist-ack", WhitelistAck), ("whitelist-current", WhitelistCurrent)):
        docs[f"{name}.schema.json"] = model.model_json_schema(by_alias=True)
    return docs


def schema_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write (or rewrite) docs/schemas/*.schema.json; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in sorted(json_schemas().items()):
        path = directory / name
        path.write_text(schema_text(doc), encoding="utf-8")
        written.append(path)
    return written
