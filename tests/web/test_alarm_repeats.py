"""The guards' page shows a grouped alarm once with its count and last time ("×37, last at ..."), on the
alarm list and the status page, in both languages, and the JSON API carries `count` and `last_seen`;
a single alarm shows no count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from web_helpers import add_guard, login

from edge.config.web import WebConfig
from edge.gate import Gate
from edge.store import AlarmRecord
from edge.web.app import create_app
from edge.web.views import local_time


def test_a_repeated_alarm_is_one_row_with_its_count(live_gate: Gate) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)

    def door(i: int, person: str) -> AlarmRecord:
        return AlarmRecord(ts=start + timedelta(seconds=i), kind="door_held", severity="warning",
                           message=f"door held open {i} s", gate_id="web-gate", person_id=person)

    ids = {live_gate.writer.submit(live_gate.store.record_alarm, door(i, "RPT-1")).result(10) for i in range(37)}
    single = live_gate.writer.submit(live_gate.store.record_alarm, door(0, "RPT-2")).result(10)
    (group,) = ids
    last = local_time(start + timedelta(seconds=36), ZoneInfo(live_gate.policy.timezone))
    name = add_guard(live_gate, "repeats-viewer", "viewer")
    with TestClient(create_app(live_gate.web_parts(), WebConfig(language="en")), follow_redirects=False) as c:
        login(c, name)
        listing = c.get("/alarms?unacked=true").text
        row = listing[listing.index(f'data-id="{group}"'):]
        row = row[:row.index("</tr>")]
        assert f"×37, last at {last}" in row and "door held open 36 s" in row  # the latest message
        single_row = listing[listing.index(f'data-id="{single}"'):]
        assert "×" not in single_row[:single_row.index("</tr>")]
        assert f"×37, last at {last}" in c.get("/").text  # the status page's open alarms
        api = {a["id"]: a for a in c.get("/api/alarms", params={"kind": "door_held", "limit": 1000}).json()}
        assert api[group]["count"] == 37 and api[group]["last_seen"].startswith(
            (start + timedelta(seconds=36)).strftime("%Y-%m-%dT%H:%M:%S"))
        assert "count" not in api[single]
    with TestClient(create_app(live_gate.web_parts(), WebConfig(language="zh-CN")), follow_redirects=False) as c:
        login(c, name)
        assert f"×37，最近一次 {last}" in c.get("/alarms").text
