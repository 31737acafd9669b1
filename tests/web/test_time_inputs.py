"""Times typed into the guards' page, its API, the hub's page and the `gate events` / `gate hub events`
commands: anything from year 1 to 9999 with any offset up to ±14 h is either taken or refused with
422 (a one-line error for a command), never a server error."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_helpers import add_guard, login

from edge.config.web import WebConfig
from edge.gate import Gate
from edge.hub.db import HubDatabase
from edge.hub.web import HubWeb, add_account, create_hub_app
from edge.time_input import EARLIEST, LATEST, TimeInputError, bounded_time
from edge.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00",
            "9999-12-31T23:59:59.999999", "1969-12-31T23:59:59Z", "3000-01-01T00:00:00+00:00"]
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))  # real offsets: whole minutes
any_time = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                        timezones=st.none() | offsets)


def in_range(value: datetime, local: timezone) -> bool:
    """The expectation, worked out on its own: the UTC instant exists and lies within the bounds."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=local)
    try:
        return EARLIEST <= aware.astimezone(UTC) <= LATEST
    except OverflowError:
        return False


@pytest.fixture(scope="module")
def guard_client(live_gate: Gate) -> TestClient:
    client = TestClient(create_app(live_gate.web_parts(), WebConfig(language="en")), follow_redirects=False)
    login(client, add_guard(live_gate, "dates-viewer", "viewer"))
    return client


def test_the_extremes_the_issue_found_give_422_with_the_reason(guard_client: TestClient) -> None:
    for text in EXTREMES:
        for param in ("since", "until"):
            api = guard_client.get("/api/events", params={param: text})
            assert api.status_code == 422, (text, api.text)
            assert "1970-01-01" in api.text and param in api.text
            page = guard_client.get("/events", params={param: text})
            assert page.status_code == 422 and "must be a date and time between 1970-01-01 and 2999-12-31" in page.text
    assert guard_client.get("/events", params={"since": "not a time"}).status_code == 422
    assert guard_client.get("/api/events", params={"since": "2026-12-01T08:00"}).status_code == 200
    assert guard_client.get("/events", params={"since": "2026-12-01T08:00", "until": ""}).status_code == 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=any_time)
def test_any_time_is_taken_or_refused_never_a_server_error(guard_client: TestClient, value: datetime) -> None:
    text = value.isoformat()
    want = 200 if in_range(value, UTC) else 422  # the page's gate runs in UTC
    assert guard_client.get("/api/events", params={"since": text, "limit": 1}).status_code == want, text
    assert guard_client.get("/events", params={"until": text}).status_code == want, text
    try:
        got = bounded_time(text, "since", UTC)
    except TimeInputError:
        assert want == 422
    else:
        assert want == 200 and got.tzinfo is UTC


def test_the_hub_page_and_the_commands_refuse_them_in_one_line(tmp_path: Path, live_gate: Gate) -> None:
    db = HubDatabase.open(str(tmp_path / "hub.db"))
    add_account(db, "clerk", "office", "a long enough secret")
    hub = TestClient(create_hub_app(HubWeb(db, None, language="en")), follow_redirects=False)
    form = hub.get("/login")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    signed_in = hub.post("/login", data={"csrf": token, "name": "clerk", "password": "a long enough secret"})
    assert signed_in.status_code == 303
    for text in EXTREMES[:2]:
        r = hub.get("/events", params={"since": text})
        assert r.status_code == 422 and "1970-01-01" in r.text
    assert hub.get("/events", params={"since": "2026-12-01T08:00"}).status_code == 200
    db.close()
    for argv in (["events", "--data-dir", str(live_gate.cfg.gate.data_dir)],
                 ["hub", "events", "--data-dir", str(tmp_path)]):
        done = subprocess.run([sys.executable, "-m", "edge", *argv, "--since", EXTREMES[0]], capture_output=True,
                              text=True, timeout=120, cwd=REPO)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "1970-01-01" in done.stderr, done.stderr
