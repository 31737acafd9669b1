"""docs/asyncapi.yaml (AsyncAPI 3.0), generated from the same pydantic models as docs/schemas/: every
channel of the topic tree with its direction, QoS, retain flag and payload schema. Written as JSON,
which is YAML; `gate admin schemas` writes it, a test keeps it in step with the models."""

from __future__ import annotations

import json
from typing import Any

from edge.protocol.schemas import DOCUMENTS

# (channel id, address, message, who sends, QoS, retained, description)
CHANNELS: tuple[tuple[str, str, str, str, int, bool, str], ...] = (
    ("gateEvents", "{prefix}/{community}/{gate}/events", "event", "gate", 1, False,
     "Access decisions, signed by the gate; also read by the community's other gates (passages)."),
    ("gateAlarms", "{prefix}/{community}/{gate}/alarms", "alarm", "gate", 1, False, "Alarms, signed by the gate."),
    ("gateState", "{prefix}/{community}/{gate}/state", "state", "gate", 1, True,
     "Health document, signed, republished every state_interval_s."),
    ("gateAvailable", "{prefix}/{community}/{gate}/available", "available", "gate", 1, True,
     "Plain text: online, stopped (clean stop) or offline (the broker's last will). Not signed."),
    ("gateWhitelistAck", "{prefix}/{community}/{gate}/whitelist/ack", "whitelist-ack", "gate", 1, True,
     "The gate's signed answer to each push, and its own snapshot requests (kind request)."),
    ("communitySnapshot", "{prefix}/{community}/whitelist/snapshot", "whitelist-snapshot", "admin", 1, False,
     "Signed snapshot chunks for every gate."),
    ("communityDelta", "{prefix}/{community}/whitelist/delta", "whitelist-delta", "admin", 1, True,
     "Signed deltas for every gate; the latest is retained (with a message expiry) for gates offline."),
    ("communityCurrent", "{prefix}/{community}/whitelist/current", "whitelist-current", "admin", 1, True,
     "Unsigned pointer to the newest version."),
    ("hubState", "{prefix}/{community}/hub/state", "hub-state", "admin", 1, True,
     "The community hub's signed heartbeat (every 30 s; cleared by its last will): gates leave the care "
     "watch to it while it is fresh."),
    ("gatePassagesRequest", "{prefix}/{community}/{gate}/passages/request", "passages-request", "gate", 1, False,
     "A gate back from an outage asks the hub for the other gates' grants since it was last connected."),
    ("gatePassages", "{prefix}/{community}/{gate}/passages", "passages", "admin", 1, False,
     "The hub's answer: the other gates' grants since then, signed by the admin key."),
    ("gateSnapshot", "{prefix}/{community}/{gate}/whitelist/snapshot", "whitelist-snapshot", "admin", 1, False,
     "Signed snapshot chunks for one gate (the answer to its request)."),
    ("gateDelta", "{prefix}/{community}/{gate}/whitelist/delta", "whitelist-delta", "admin", 1, False,
     "Signed deltas for one gate."),
)
PARAMETERS = {"prefix": {"description": "Topic prefix, one or more levels (default edge-gate)."},
              "community": {"description": "Community id ([gate] community)."},
              "gate": {"description": "Gate id ([gate] id); never `whitelist`."}}


def _hoist(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Move a pydantic schema's `$defs` into `shared` and point its refs at components/schemas."""
    for name, sub in schema.pop("$defs", {}).items():
        shared[name] = sub
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    return dict(json.loads(text))


def asyncapi_document() -> dict[str, Any]:
    shared: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, model in DOCUMENTS:
        schemas[name] = _hoist(model.model_json_schema(by_alias=True), shared)
    for name, sub in list(shared.items()):
        shared[name] = dict(json.loads(json.dumps(sub).replace('"#/$defs/', '"#/components/schemas/')))
    schemas["available"] = {"type": "string", "enum": ["online", "stopped", "offline"]}
    messages = {name: {"name": name, "contentType": "text/plain" if name == "available" else "application/json",
                       "payload": {"$ref": f"#/components/schemas/{name}"}} for name in schemas}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for cid, address, message, sender, qos, retain, text in CHANNELS:
        params = {p: {"$ref": f"#/components/parameters/{p}"} for p in PARAMETERS if "{" + p + "}" in address}
        channels[cid] = {"address": address, "description": text, "parameters": params,
                         "messages": {message: {"$ref": f"#/components/messages/{message}"}}}
        operations[f"{sender}Sends{cid[0].upper()}{cid[1:]}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"Published by the {'gate' if sender == 'gate' else 'community admin or hub'}.",
            "bindings": {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}}}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "edge-gate community protocol", "version": "2.0.0",
                 "description": "Gates and their community over MQTT. docs/protocol.md is the full text: "
                 "signatures (Ed25519 over RFC 8785), version rules, the snapshot-request sequence, codes."},
        "defaultContentType": "application/json",
        "servers": {"broker": {"host": "broker.example:8883", "protocol": "mqtt", "protocolVersion": "5",
                               "description": "The community's MQTT broker (mqtts:// in production)."}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {**dict(sorted(shared.items())), **schemas},
                       "messages": messages, "parameters": PARAMETERS},
    }


def asyncapi_text() -> str:
    return ("# Generated by `gate admin schemas` from edge/protocol (do not edit); JSON is valid YAML.\n"
            + json.dumps(asyncapi_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n")
