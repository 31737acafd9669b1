"""The committed JSON Schema files equal the generated ones; the [mqtt] config section and its
secret references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.config.mqtt import MqttConfig, SecretError, resolve_secret
from edge.protocol.schemas import json_schemas, schema_text, write_schemas
from edge.protocol.signing import AdminKey, public_key_text
from edge.protocol.topics import Topics

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_committed_schemas_are_the_generated_ones(tmp_path: Path) -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.schema.json")}
    generated = {name: schema_text(doc) for name, doc in json_schemas().items()}
    assert committed == generated, "run: gate admin schemas --out docs/schemas"
    assert {"event.schema.json", "whitelist-ack.schema.json", "whitelist-delta.schema.json"} <= set(committed)
    assert {p.name for p in write_schemas(tmp_path)} == set(generated)


def test_committed_asyncapi_is_the_generated_one() -> None:
    from edge.protocol.asyncapi import CHANNELS, asyncapi_document, asyncapi_text

    committed = (SCHEMAS.parent / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi_text(), "run: gate admin schemas"
    doc = asyncapi_document()
    assert doc["asyncapi"] == "3.0.0" and len(doc["channels"]) == len(CHANNELS)
    closed = doc["components"]["schemas"]
    for name in ("event", "alarm", "state", "whitelist-ack"):  # closed: an unknown member is refused
        assert closed[name]["additionalProperties"] is False, name
        assert "signature" in closed[name]["required"], name
    refs = [m for m in json.dumps(doc).split('"$ref": "')[1:]]
    for ref in refs:  # every reference resolves inside the document
        node: object = doc
        for part in ref.split('"', 1)[0].lstrip("#/").split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def test_topics() -> None:
    t = Topics("edge-gate", "sunny", "g1")
    assert (t.available, t.events, t.whitelist_ack) == ("edge-gate/sunny/g1/available", "edge-gate/sunny/g1/events",
                                                        "edge-gate/sunny/g1/whitelist/ack")
    assert t.whitelist_push == ["edge-gate/sunny/whitelist/snapshot", "edge-gate/sunny/whitelist/delta",
                                "edge-gate/sunny/g1/whitelist/snapshot", "edge-gate/sunny/g1/whitelist/delta"]
    assert t.peer_events == "edge-gate/sunny/+/events" and t.gate_of("edge-gate/sunny/g7/events") == "g7"
    assert t.gate_of("other/sunny/g7/events") is None and t.outbox("event") == t.events and t.outbox("x") is None
    for bad in ("a/b", "+", "#", "", "whitelist"):
        with pytest.raises(ValueError):
            Topics("edge-gate", "sunny", bad)


def test_config_url_and_keys() -> None:
    cfg = MqttConfig()
    assert (cfg.host, cfg.port, cfg.tls, cfg.enabled, cfg.protocol) == ("127.0.0.1", 1883, False, False, "5")
    tls = MqttConfig(url="mqtts://broker.example", tls_ca_file=Path("/etc/ca.pem"))
    assert (tls.host, tls.port, tls.tls) == ("broker.example", 8883, True)
    key = AdminKey.generate()
    assert MqttConfig(admin_public_keys=[public_key_text(key.public)]).trusted_keys()[0] == key.public
    for bad in ({"url": "http://x:1883"}, {"url": "mqtt://"}, {"url": "mqtt://u:p@host:1883"},
                {"url": "mqtt://h:99999"}, {"admin_public_keys": ["ed25519:nope"]}, {"tls_ca_file": "/ca.pem"},
                {"reconnect_min_s": 10, "reconnect_max_s": 1}, {"unknown_key": 1},
                {"username": "u", "password_secret": "hunter2"}, {"password_secret": "{env:X}"}):
        with pytest.raises(ValidationError):
            MqttConfig.model_validate(bad)
    assert all(f.description for f in MqttConfig.model_fields.values())


def test_secret_references(tmp_path: Path) -> None:
    (tmp_path / "mqtt").write_text("from-file\n")
    env = {"MQTT_PW": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert resolve_secret("{env:MQTT_PW}", env) == "from-env"
    assert resolve_secret("{cred:mqtt}", env) == "from-file"
    assert MqttConfig(username="g", password_secret="{cred:mqtt}").password(env) == "from-file"
    for ref, environ in (("{env:MISSING}", env), ("{cred:missing}", env), ("{cred:mqtt}", {}),
                         ("literal", env), ("{cred:..}", env), ("{file:/etc/passwd}", env)):
        with pytest.raises(SecretError):
            resolve_secret(ref, environ)
