"""JSON Schema documents of every MQTT payload, generated from the protocol's pydantic models, and
their files in `docs/schemas/` (written by `gate admin schemas`, checked by the tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.protocol.messages import Delta, SnapshotChunk
from edge.protocol.payloads import (
    AlarmMessage,
    EventMessage,
    HubState,
    Passages,
    PassagesRequest,
    StateMessage,
    WhitelistAck,
    WhitelistCurrent,
)

DOCUMENTS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("whitelist-snapshot", SnapshotChunk), ("whitelist-delta", Delta), ("event", EventMessage),
    ("alarm", AlarmMessage), ("state", StateMessage), ("whitelist-ack", WhitelistAck),
    ("whitelist-current", WhitelistCurrent), ("hub-state", HubState), ("passages-request", PassagesRequest),
    ("passages", Passages))


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every payload's JSON Schema, by file name (`<kind>.schema.json`)."""
    return {f"{name}.schema.json": model.model_json_schema(by_alias=True) for name, model in DOCUMENTS}


def schema_text(doc: dict[str, Any]) -> str:
    """The text of a schema file: sorted keys, two-space indent, a final newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path, asyncapi: Path | None = None) -> list[Path]:
    """Write (or rewrite) `<directory>/*.schema.json` and, if given, the AsyncAPI file; returns the
    files written. OSError when a directory cannot be made or written."""
    from edge.protocol.asyncapi import asyncapi_text

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in sorted(json_schemas().items()):
        path = directory / name
        path.write_text(schema_text(doc), encoding="utf-8")
        written.append(path)
    if asyncapi is not None:
        asyncapi.write_text(asyncapi_text(), encoding="utf-8")
        written.append(asyncapi)
    return written
