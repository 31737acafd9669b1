"""Hold-open from the guards' page, on a started gate whose relay is the emulated LCUS board: operators
only (a viewer is refused and audited), CSRF on the POST, a reason and bounded minutes, audited, the
banner on the status page while held, "release now", and the end at its time (the supervisor's pass at
a later time)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from web_helpers import add_guard, login, wait_for

from drivers.emulators.relay import LcusSim
from edge.config.web import WebConfig
from edge.gate import Gate
from edge.web.app import create_app


@pytest.fixture
def client(live_gate: Gate) -> Iterator[TestClient]:
    with TestClient(create_app(live_gate.web_parts(), WebConfig(language="en")), follow_redirects=False) as c:
        yield c


def _board(gate: Gate) -> LcusSim:
    sim: LcusSim = gate.relay.sim  # type: ignore[attr-defined]
    return sim


def _audited(gate: Gate, guard: str, action: str) -> list[dict[str, object]]:
    return [e.details for e in gate.store.audit_entries(limit=1000) if e.actor == guard and e.action == action]


def test_viewer_may_not_hold_open(live_gate: Gate, client: TestClient) -> None:
    viewer = add_guard(live_gate, "hold-viewer", "viewer")
    csrf = login(client, viewer)
    assert 'id="hold-form"' not in client.get("/").text
    r = client.post("/api/hold-open", json={"reason": "party", "minutes": 10}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    assert wait_for(lambda: _audited(live_gate, viewer, "hold_open_refused"), 10)
    assert client.post("/api/hold-open/release", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert "hold_open" not in live_gate.relay.holds


def test_operator_holds_open_with_banner_release_and_end(live_gate: Gate, client: TestClient) -> None:
    operator = add_guard(live_gate, "hold-operator", "operator")
    csrf = login(client, operator)
    assert 'id="hold-form"' in client.get("/").text
    assert client.post("/api/hold-open", json={"reason": "moving day", "minutes": 10}).status_code == 403  # no CSRF
    bad = [({"reason": "  ", "minutes": 10}, 400), ({"reason": "x", "minutes": 241}, 400),
           ({"reason": "x", "minutes": 0}, 422), ({"reason": "x"}, 422)]
    for body, status in bad:
        assert client.post("/api/hold-open", json=body, headers={"X-CSRF-Token": csrf}).status_code == status, body
    assert "hold_open" not in live_gate.relay.holds
    r = client.post("/api/hold-open", json={"reason": "moving day", "minutes": 10}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["hold_open"]["guard"] == operator
    board = _board(live_gate)
    assert wait_for(lambda: board.coil(1), 5)  # the turnstile is held released
    page = client.get("/").text
    assert f"HELD OPEN by {operator} until" in page and "moving day" in page and 'id="hold-release"' in page
    assert client.get("/api/status").json()["lane_io"]["hold_open"]["reason"] == "moving day"
    assert wait_for(lambda: any(d.get("minutes") == 10 for d in _audited(live_gate, operator, "hold_open")), 10)
    # release now
    assert client.post("/api/hold-open/release", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert wait_for(lambda: not board.coil(1), 5)
    assert client.post("/api/hold-open/release", headers={"X-CSRF-Token": csrf}).status_code == 404
    assert wait_for(lambda: _audited(live_gate, operator, "hold_open_released"), 10)
    assert 'id="hold-banner" class="banner hold" hidden' in client.get("/").text
    # a hold that ends at its time: the supervisor's pass 11 minutes on ends it, audited as the gate's
    client.post("/api/hold-open", json={"reason": "delivery", "minutes": 10}, headers={"X-CSRF-Token": csrf})
    assert wait_for(lambda: board.coil(1), 5)
    live_gate.safety.check([], now=datetime.now(UTC) + timedelta(minutes=11))
    assert wait_for(lambda: not board.coil(1), 5) and live_gate.safety.held is None
    assert wait_for(lambda: any(d.get("reason") == "delivery" for d in _audited(live_gate, "gate", "hold_open_ended")),
                    10)
