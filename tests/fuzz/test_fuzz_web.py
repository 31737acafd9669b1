"""The guards' page and the peer-event intake against a real gate replaying the demo scene.

schemathesis generates requests from the page's own OpenAPI (/openapi.json) and sends each twice: as
an anonymous client and as a logged-in operator (session cookie + X-CSRF-Token). No response may be
a server error, every response must match the documented schema and content type, and none may carry
a face template. Peer-gate events with arbitrary content go through the MQTT intake into the gate.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fuzz_helpers import fuzz_settings, wire_text
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from web_helpers import add_guard, login

from edge.config.mqtt import MqttConfig
from edge.config.web import WebConfig
from edge.gate import Gate
from edge.protocol.signing import SigningKey
from edge.store import Store
from edge.sync.members import MemberGates
from edge.sync.mqtt import MqttSync
from edge.web.app import create_app
from edge.web.auth import SESSION_COOKIE

pytestmark = pytest.mark.fuzz
EXAMPLES = 25  # per operation; every example is sent twice (anonymous and logged in)


@dataclass
class Page:
    app: FastAPI
    cookies: dict[str, str]
    headers: dict[str, str]
    needles: list[bytes]  # what a leaked template would look like in a body


def _needles(store: Store, model_id: str) -> list[bytes]:
    """Each stored template as raw float32 bytes and as base64 (its first 24 characters suffice)."""
    _ids, matrix = store.load_templates(model_id)
    assert len(matrix) > 0, "the demo store has templates: the leak check needs something to look for"
    out = []
    for row in np.asarray(matrix, dtype="<f4"):
        raw = row.tobytes()
        out += [raw[:32], base64.b64encode(raw)[:24]]
    return out


@pytest.fixture(scope="module")
def page(live_gate: Gate) -> Iterator[Page]:
    app = create_app(live_gate.web_parts(), WebConfig(language="en"))
    client = TestClient(app, follow_redirects=False)  # logging in needs no lifespan
    csrf = login(client, add_guard(live_gate, "fuzz-operator", "operator"))
    token = client.cookies[SESSION_COOKIE]
    yield Page(app, {SESSION_COOKIE: token}, {"X-CSRF-Token": csrf},
               _needles(live_gate.store, live_gate.engine.model_id))
    shutdown_lifespans()  # the live stream's lifespan schemathesis started for the app


@pytest.fixture(scope="module")
def api_schema(page: Page) -> Any:
    config = schemathesis.Config.from_dict({
        "max-stream-events": 3,  # /api/stream never ends by itself: a few events are enough
        "generation": {"deterministic": True, "database": "none"},
    })
    return schemathesis.openapi.from_asgi("/openapi.json", page.app, config=config)


def _leaks(body: bytes, needles: list[bytes]) -> list[str]:
    found = [f"template bytes {n[:8]!r}..." for n in needles if n in body]
    try:
        doc = json.loads(body)
    except ValueError:
        return found

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if re.search(r"embedding|template", str(key), re.IGNORECASE) and isinstance(item, str | list | dict):
                    found.append(f"key {path}.{key}")  # a count of templates is fine, their content is not
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            if len(value) >= 64 and all(isinstance(v, float) for v in value):
                found.append(f"a vector of {len(value)} floats at {path}")
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
    walk(doc, "$")
    return found


def no_embedding_leak(needles: list[bytes]) -> Any:
    @schemathesis.check
    def no_embedding_in_response(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool:
        leaks = _leaks(response.content, needles)
        if leaks:
            raise AssertionError(f"{case.method} {case.formatted_path} leaks face templates: {leaks[:3]}")
        return True
    return no_embedding_in_response


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_page_api_has_no_server_errors_keeps_its_schema_and_leaks_no_templates(api_schema: Any, page: Page,
                                                                               mode: GenerationMode) -> None:
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance,
              no_embedding_leak(page.needles)]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.query) or len(operation.path_parameters)
                                                    or len(operation.body)):
            continue  # nothing to send that breaks the schema
        @fuzz_settings(EXAMPLES)
        @given(case=operation.as_strategy(generation_mode=mode))
        def exchange(case: schemathesis.Case) -> None:
            anonymous = case.call()
            case.validate_response(anonymous, checks=checks)
            logged_in = case.call(headers=page.headers, cookies=page.cookies)
            case.validate_response(logged_in, checks=checks)

        try:
            exchange()
        except Unsatisfiable:
            if mode is GenerationMode.NEGATIVE:
                continue  # the schema admits every value of its parameters: there is no invalid request
            raise
        except Exception as exc:
            exc.add_note(f"operation: {operation.label} ({mode.value})")
            raise


def test_leak_check_sees_a_template_in_any_form(page: Page) -> None:
    raw = page.needles[0]
    vector = np.frombuffer(page.needles[0], dtype="<f4").tolist() * 16
    for body in (b"\xff\xd8" + raw + b"\xff\xd9", json.dumps({"p": {"embedding": "AAAA"}}).encode(),
                 json.dumps([{"v": vector}]).encode(), json.dumps({"x": page.needles[1].decode()}).encode()):
        assert _leaks(body, page.needles), body[:40]
    assert _leaks(json.dumps({"id": "R001", "scores": [0.5, 0.7], "templates": 6}).encode(), page.needles) == []


@pytest.mark.parametrize("path", ["/", "/events", "/alarms", "/persons", "/login", "/events?person=R001",
                                  "/persons?q=a"])
def test_pages_leak_no_templates(page: Page, live_gate: Gate, path: str) -> None:
    client = TestClient(page.app, follow_redirects=False, cookies=page.cookies)
    r = client.get(path)
    assert r.status_code in (200, 303), (path, r.status_code)
    assert _leaks(r.content, page.needles) == []
    for event in live_gate.store.events(limit=3, newest_first=True):
        detail = client.get(f"/events/{event.event_id}")
        assert detail.status_code == 200 and _leaks(detail.content, page.needles) == []


# ------------------------------------------------------------------------------ peer events into the gate

PEERS = {"gate-b": SigningKey.generate(), "gate-c": SigningKey.generate()}  # member gates of the community
odd_times = st.sampled_from(["0001-01-01T00:00:00Z", "0001-01-01T00:00:30+00:00", "9999-12-31T23:59:59Z",
                             "2020-01-01T00:00:00", "0999-06-01T12:00:00Z"]) | st.datetimes(
    datetime(1, 1, 2), timezones=st.just(UTC)).map(datetime.isoformat)


@fuzz_settings(100)
@given(st.fixed_dictionaries({
    "schema": st.just("edge-gate/event/2"), "event_id": st.from_regex(r"[0-9A-Z]{26}", fullmatch=True),
    "ts": odd_times, "gate_id": st.sampled_from(["gate-b", "gate-c"]), "direction": st.sampled_from(["in", "out"]),
    "person_id": st.none() | st.sampled_from(["R001", "R002", "nobody"]) | wire_text,
    "decision": st.sampled_from(["grant", "deny"]),
    "reasons": st.lists(st.fixed_dictionaries({"code": st.sampled_from(["ok", "manual_open"]),
                                               "effect": st.just("allow"), "params": st.just({})}), max_size=2),
    "alarms": st.just([]),
}, optional={"temperature": st.none(), "scores": st.none() | st.just({"score": 0.7})}))
def test_peer_events_of_any_content_reach_the_gate_without_an_error(peer_sync: MqttSync, live_gate: Gate,
                                                                    event: dict[str, Any]) -> None:
    peer_sync._peer_event(f"{peer_sync.topics.community_base}/{event['gate_id']}/events",
                          json.dumps(PEERS[event["gate_id"]].sign(event)).encode())  # the gate's handler runs inside
    live_gate.writer.submit(live_gate.store.outbox_depth).result(10)  # the writer has caught up
    person, ts = event["person_id"], event["ts"]
    if event["decision"] == "grant" and isinstance(person, str) and person and len(person) <= 64 \
            and ts.endswith(("Z", "+00:00")) and datetime.fromisoformat(ts) < datetime.now(UTC):
        when = datetime.fromisoformat(ts)
        seen = live_gate.store.recent_passages(person, when)
        assert any(p.ts == when and p.gate_id == event["gate_id"] for p in seen), (person, ts)


@pytest.fixture(scope="module")
def peer_sync(live_gate: Gate) -> MqttSync:
    """The gate's MQTT intake (never connected): peer events go to the gate's own handler."""
    return MqttSync(MqttConfig(), live_gate.store, gate_id=live_gate.cfg.gate.id,
                    community=live_gate.cfg.gate.community, on_peer_event=live_gate.peers.on_event,
                    members=MemberGates([(g, k.public_text) for g, k in PEERS.items()]))
