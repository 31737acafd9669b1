"""Whitelist push messages: their JSON schema (pydantic), size limits, parsing and verification.

Every payload carries `schema` ("edge-gate/<kind>/<major>"), so a gate refuses what it does not
understand instead of guessing. The JSON Schema files in `docs/schemas/` are generated from these
models (`edge.protocol.schemas`, `gate admin schemas`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.protocol.limits import MAX_ENTRIES_PER_MESSAGE, MAX_PAYLOAD_BYTES, MAX_PHOTO_BYTES, MAX_TEMPLATES_PER_PERSON
from edge.protocol.payloads import Signature
from edge.protocol.signing import CanonicalError, SignatureError, parse_public_key, verify

if TYPE_CHECKING:
    import numpy as np

SNAPSHOT_SCHEMA = "edge-gate/whitelist-snapshot/2"
DELTA_SCHEMA = "edge-gate/whitelist-delta/2"
GATE_ID = r"^[A-Za-z0-9_.-]{1,64}$"


class RejectedPush(ValueError):
    """A push the gate refuses; `code` is machine-readable and goes into the nack."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Templates(Strict):
    model_id: str = Field(description="Embedding model that made these templates, e.g. sface_2021dec.")
    embeddings: list[str] = Field(description="Base64 of little-endian float32 vectors, one per template.",
                                  min_length=1, max_length=MAX_TEMPLATES_PER_PERSON)

    def arrays(self) -> np.ndarray:
        """The templates as one float32 array (one row per template); ValueError when malformed."""
        import numpy as np  # here: the CLI reads the limits above without loading numpy

        try:
            vecs = [np.frombuffer(base64.b64decode(e, validate=True), dtype="<f4") for e in self.embeddings]
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"embedding is not base64 float32 ({exc})") from exc
        dims = {v.shape[0] for v in vecs}
        if len(dims) != 1 or 0 in dims or not all(np.isfinite(v).all() for v in vecs):
            raise ValueError("embeddings must be non-empty, finite and of one length")
        return np.stack(vecs).astype(np.float32)


class PersonEntry(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$", description="Stable person id from the community server.")
    name: str = Field(max_length=200, description="Display name shown to guards.")
    kind: Literal["resident", "visitor", "staff"] = "resident"
    status: Literal["active", "suspended", "blocked"] = "active"
    unit: str | None = Field(None, max_length=64, description="Flat or house number.")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = Field(None, ge=1, description="Visitors: passages allowed in all.")
    allowed_gates: list[str] = Field(default_factory=list, description="Empty: every gate of the community.")
    directions: list[Literal["in", "out"]] = Field(default_factory=list, description="Empty: both.")
    schedule: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[tuple[str, str]]] | None = Field(
        None, description="Weekly windows in the gate's local time, e.g. {\"mon\": [[\"07:00\", \"22:00\"]]}.")
    care_watch_hours: float | None = Field(None, gt=0, le=24 * 14)
    card: int | None = Field(None, ge=0, le=4294967295, strict=True, description="Card number the gate sends "
                             "to an access panel (Wiegand, OSDP) when it grants; absent: no card.")
    templates: Templates | None = None
    photo_jpeg: str | None = Field(None, description="Base64 JPEG of the face when no templates are given; the "
                                   "gate makes its own templates and discards the photo unless configured.")

    @field_validator("photo_jpeg")
    @classmethod
    def _photo_size(cls, v: str | None) -> str | None:
        if v is not None and len(v) * 3 // 4 > MAX_PHOTO_BYTES:
            raise ValueError(f"photo larger than {MAX_PHOTO_BYTES} bytes")
        return v


PATCH_FIELDS = ("name", "kind", "status", "unit", "valid_from", "valid_until", "max_uses", "allowed_gates",
                "directions", "schedule", "care_watch_hours", "card")


class PersonPatch(Strict):
    """A change of some fields of a person the gate has: only the members present change (null clears
    a field that may be null); templates, photos and the use count stay. For a status-only change."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")
    name: str | None = Field(None, max_length=200)
    kind: Literal["resident", "visitor", "staff"] | None = None
    status: Literal["active", "suspended", "blocked"] | None = None
    unit: str | None = Field(None, max_length=64)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = Field(None, ge=1)
    allowed_gates: list[str] | None = None
    directions: list[Literal["in", "out"]] | None = None
    schedule: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[tuple[str, str]]] | None = None
    care_watch_hours: float | None = Field(None, gt=0, le=24 * 14)
    card: int | None = Field(None, ge=0, le=4294967295, strict=True, description="null: no card.")

    @model_validator(mode="after")
    def _something(self) -> PersonPatch:
        given = self.changed()
        if not given:
            raise ValueError("a patch changes at least one field")
        for name in ("name", "kind", "status", "allowed_gates", "directions"):
            if name in given and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changed(self) -> dict[str, Any]:
        """The fields this patch sets, by name."""
        return {k: getattr(self, k) for k in PATCH_FIELDS if k in self.model_fields_set}


class MemberGate(Strict):
    """A gate of the community: its events are accepted by the other gates when signed by this key."""

    gate_id: str = Field(pattern=GATE_ID)
    public_key: str = Field(description="`ed25519:<base64 of the 32 raw bytes>`.")

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        parse_public_key(v)
        return v


class PushBase(Strict):
    community: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    gate: str | None = Field(None, description="Only for this gate; null: every gate of the community.")
    version: int = Field(ge=1, description="Monotonically increasing whitelist version.")
    issued_at: datetime
    expires_at: datetime
    signature: Signature

    @model_validator(mode="after")
    def _times(self) -> PushBase:
        if self.issued_at.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError("issued_at and expires_at need a time zone")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self


class SnapshotChunk(PushBase):
    schema_: Literal["edge-gate/whitelist-snapshot/2"] = Field(alias="schema")
    chunk: int = Field(ge=0)
    chunks: int = Field(ge=1, le=10_000)
    total_persons: int = Field(ge=0, description="Persons in the whole snapshot (all chunks).")
    entries: list[PersonEntry] = Field(max_length=MAX_ENTRIES_PER_MESSAGE)
    gates: list[MemberGate] = Field(max_length=MAX_ENTRIES_PER_MESSAGE, description="Every gate of the "
                                    "community (the same list in every chunk); replaces the gate's list.")

    @model_validator(mode="after")
    def _chunk_in_range(self) -> SnapshotChunk:
        if self.chunk >= self.chunks:
            raise ValueError("chunk must be < chunks")
        return self


class Delta(PushBase):
    schema_: Literal["edge-gate/whitelist-delta/2"] = Field(alias="schema")
    base_version: int = Field(ge=0, description="The version this delta applies on top of.")
    upserts: list[PersonEntry] = Field(default_factory=list, max_length=MAX_ENTRIES_PER_MESSAGE,
                                       description="Whole records: replace the person's record (templates "
                                       "omitted: the gate keeps the ones it has).")
    patches: list[PersonPatch] = Field(default_factory=list, max_length=MAX_ENTRIES_PER_MESSAGE,
                                       description="Some fields of persons the gate has.")
    gates: list[MemberGate] | None = Field(None, max_length=MAX_ENTRIES_PER_MESSAGE,
                                           description="Null or absent: member gates unchanged; a list replaces them.")
    deletes: list[str] = Field(default_factory=list, max_length=MAX_ENTRIES_PER_MESSAGE)

    @model_validator(mode="after")
    def _base_below(self) -> Delta:
        if self.base_version >= self.version:
            raise ValueError("base_version must be below version")
        return self


Push = SnapshotChunk | Delta


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def parse_push(raw: bytes, trusted: list[Ed25519PublicKey], *, now: datetime | None = None) -> Push:
    """Parse and verify one push message; raise RejectedPush with a code for anything wrong."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise RejectedPush("oversize", f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise RejectedPush("malformed_json", f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RejectedPush("malformed_json", "payload is not a JSON object")
    schema = data.get("schema")
    model: type[SnapshotChunk] | type[Delta]
    if schema == SNAPSHOT_SCHEMA:
        model = SnapshotChunk
    elif schema == DELTA_SCHEMA:
        model = Delta
    elif isinstance(schema, str) and schema in (SNAPSHOT_SCHEMA[:-1] + "1", DELTA_SCHEMA[:-1] + "1"):
        raise RejectedPush("unknown_schema", f"{schema} is protocol v1; this gate speaks v2 (docs/protocol.md)")
    else:
        raise RejectedPush("unknown_schema", f"unknown schema {str(schema)[:80]!r}")
    try:
        verify(data, trusted)
    except SignatureError as exc:
        raise RejectedPush("bad_signature", str(exc)) from exc
    except (RecursionError, CanonicalError) as exc:  # parsed, but no canonical form to check
        raise RejectedPush("malformed_json", f"payload cannot be canonicalised: {exc}") from exc
    try:
        push = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RejectedPush("invalid", f"{where}: {first['msg']} ({exc.error_count()} error(s))") from exc
    now = now or datetime.now(UTC)
    if push.expires_at <= now:
        raise RejectedPush("expired", f"push expired at {push.expires_at.isoformat()}")
    return push
