"""The guards' page through FastAPI's TestClient against a real, running gate on the demo scene:
login and sessions, CSRF, the login rate limit, roles, manual open, alarms, events, persons, health,
metrics, OpenAPI and language choice; the page's audit rows on a full disk."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from web_helpers import PASSWORD, add_guard, body_csrf, csrf_of, login, wait_for

from edge.config.web import WebConfig
from edge.gate import Gate
from edge.store import AlarmRecord, EventRecord, Store, StoreFullError
from edge.store.writer import StoreWriter
from edge.web.app import create_app
from edge.web.auth import hash_password
from edge.web.ports import GuardWrites

_names = itertools.count()


def guard(gate: Gate, role: str) -> str:
    return add_guard(gate, f"{role}{next(_names)}", role)


@pytest.fixture
def client(live_gate: Gate) -> Iterator[TestClient]:
    with TestClient(create_app(live_gate.web_parts(), WebConfig(language="en")), follow_redirects=False) as c:
        yield c


def test_login_session_cookie_and_logout(live_gate: Gate, client: TestClient) -> None:
    name = guard(live_gate, "viewer")
    assert client.get("/").headers["location"] == "/login"
    assert client.get("/api/status").status_code == 401
    form = client.get("/login")
    token = csrf_of(form.text)
    bad = client.post("/login", data={"csrf": "forged", "name": name, "password": PASSWORD})
    assert bad.status_code == 403
    wrong = client.post("/login", data={"csrf": csrf_of(bad.text), "name": name, "password": "wrong password!"})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    ok = client.post("/login", data={"csrf": csrf_of(wrong.text), "name": name, "password": PASSWORD})
    assert ok.status_code == 303 and token
    cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and v.startswith("gate_session="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and name in page.text
    status = client.get("/api/status").json()
    assert status["gate_id"] == "web-gate" and status["mqtt"] == {"configured": False, "connected": None}
    assert client.post("/logout", data={"csrf": "nope"}).status_code == 403
    out = client.post("/logout", data={"csrf": body_csrf(page.text)})
    assert out.status_code == 303 and client.get("/api/status").status_code == 401
    actions = [(a.actor, a.action) for a in live_gate.store.audit_entries(limit=50)]
    assert (name, "login") in actions and (name, "logout") in actions and (name, "login_failed") in actions


def test_secure_cookie_and_expiry(live_gate: Gate) -> None:
    name = guard(live_gate, "viewer")
    cfg = WebConfig(secure_cookies=True, session_hours=0.001)  # 3.6 s
    with TestClient(create_app(live_gate.web_parts(), cfg), base_url="https://testserver", follow_redirects=False) as c:
        form = c.get("/login")
        r = c.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": PASSWORD})
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("gate_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert c.get("/api/status").status_code == 200
        token = cookie.split(";")[0].split("=", 1)[1]
        c.cookies.clear()  # the browser would drop it too; send it by hand to see the server refuse it
        assert c.get("/api/status", headers={"Cookie": f"gate_session={token}"}).status_code == 200
        assert wait_for(lambda: c.get("/api/status", headers={"Cookie": f"gate_session={token}"}).status_code
                        == 401, 8)  # expired on the server, not only in the browser


def test_csrf_required_on_every_post(live_gate: Gate, client: TestClient) -> None:
    name = guard(live_gate, "operator")
    csrf = login(client, name)
    assert client.post("/api/open", json={"reason": "test"}).status_code == 403
    assert client.post("/api/open", json={"reason": "test"}, headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    assert client.post("/api/alarms/whatever/ack").status_code == 403
    assert client.post("/api/alarms/whatever/ack", headers={"X-CSRF-Token": csrf}).status_code == 404
    # one open with the token; the writer keeps order, so once its audit row is there, any open the refused
    # requests had made would be there too (the relay's pulse count also moves with residents' grants)
    assert client.post("/api/open", json={"reason": "test"}, headers={"X-CSRF-Token": csrf}).status_code == 200

    def opens() -> list[object]:
        return [e for e in live_gate.store.audit_entries(limit=1000) if e.actor == name and e.action == "manual_open"]
    assert wait_for(lambda: len(opens()) >= 1, 10)
    assert len(opens()) == 1


def test_login_backs_off_per_address_and_name_and_raises_one_alarm(live_gate: Gate) -> None:
    name = guard(live_gate, "operator")
    app = create_app(live_gate.web_parts(), WebConfig(login_attempts_per_minute=6, login_free_failures=3))

    def attempt(ip: str, user: str, password: str) -> int:
        with TestClient(app, follow_redirects=False, client=(ip, 4000)) as c:
            token = csrf_of(c.get("/login").text)
            r = c.post("/login", data={"csrf": token, "name": user, "password": password})
            if r.status_code == 429:
                assert 1 <= int(r.headers["retry-after"]) <= 900
            return r.status_code

    def lockouts() -> list[str]:
        return [a.details.get("guard", "") for a in live_gate.store.alarms(kind="login_lockout", limit=100)]

    before = len(lockouts())
    # one address guessing one guard's password: free failures, then each wrong one waits longer
    assert [attempt("10.0.0.1", name, "wrong password") for _ in range(4)] == [401] * 4
    assert attempt("10.0.0.1", name, PASSWORD) == 429  # even the right password waits there
    assert attempt("10.0.0.2", name, PASSWORD) == 303  # the real guard at another terminal is not locked out
    assert wait_for(lambda: len(lockouts()) == before + 1, 10)  # one alarm names the locked-out guard
    assert lockouts()[0] == name
    # one address trying many names: its per-minute ceiling
    assert [attempt("10.0.3.1", f"nobody{i}", "wrong password") for i in range(6)] == [401] * 6
    assert attempt("10.0.3.1", guard(live_gate, "viewer"), PASSWORD) == 429
    assert attempt("10.0.3.2", guard(live_gate, "viewer"), PASSWORD) == 303
    failed = [e for e in live_gate.store.audit_entries(limit=1000) if e.action == "login_failed"]
    assert {"ip": "10.0.0.1"} in [e.details for e in failed]  # no forwarded address: no trusted proxy


def test_viewer_cannot_open_operator_can(live_gate: Gate, client: TestClient) -> None:
    viewer = guard(live_gate, "viewer")
    viewer_csrf = login(client, viewer)
    assert 'id="open-form"' not in client.get("/").text
    pulses = live_gate.relay.stats.pulses
    r = client.post("/api/open", json={"reason": "let me"}, headers={"X-CSRF-Token": viewer_csrf})
    assert r.status_code == 403
    live_gate.writer.submit(live_gate.store.outbox_depth).result(10)  # in order: an open would be audited by now
    assert not [e for e in live_gate.store.audit_entries(limit=1000) if e.actor == viewer and e.action == "manual_open"]
    client.cookies.clear()
    operator = guard(live_gate, "operator")
    csrf = login(client, operator)
    assert 'id="open-form"' in client.get("/").text
    assert client.post("/api/open", json={"reason": "  "}, headers={"X-CSRF-Token": csrf}).status_code == 400
    assert client.post("/api/open", json={}, headers={"X-CSRF-Token": csrf}).status_code == 422
    r = client.post("/api/open", json={"reason": "parcel courier"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert pulses < r.json()["pulses"] <= live_gate.relay.stats.pulses  # residents' grants pulse it too
    event_id = r.json()["event_id"]
    assert wait_for(lambda: live_gate.store.get_event(event_id) is not None, 5)
    detail = client.get(f"/api/events/{event_id}").json()
    assert detail["decision"] == "grant" and detail["reasons"][0]["code"] == "manual_open"
    assert any(a.actor == operator and a.action == "manual_open" and a.details["reason"] == "parcel courier"
               for a in live_gate.store.audit_entries(limit=100))
    page = client.get(f"/events/{event_id}").text
    assert f"Opened by hand by {operator}: parcel courier" in page


def test_alarm_acknowledged_by_the_logged_in_guard(live_gate: Gate, client: TestClient) -> None:
    alarm = AlarmRecord(ts=datetime.now(UTC), kind="stranger", severity="warning", message="unknown face at the gate",
                        gate_id="web-gate", person_id="ack-test")  # its own source: not counted on the scene's
    live_gate.record_alarm(alarm)
    assert wait_for(lambda: any(a.id == alarm.id for a in live_gate.store.alarms(unacknowledged=True, limit=1000)), 5)
    # a viewer sees the alarm but may not silence it (by default)
    viewer = guard(live_gate, "viewer")
    csrf = login(client, viewer)
    listing = client.get("/alarms?unacked=true").text
    assert alarm.id in listing and 'class="ack"' not in listing and 'data-may-ack="0"' in listing
    assert client.post(f"/api/alarms/{alarm.id}/ack", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert wait_for(lambda: any(a.actor == viewer and a.action == "alarm_ack_refused"
                                for a in live_gate.store.audit_entries(limit=1000)), 10)
    allowed = TestClient(create_app(live_gate.web_parts(), WebConfig(viewers_may_acknowledge=True)),
                         follow_redirects=False)
    login(allowed, viewer)
    assert 'class="ack"' in allowed.get("/alarms?unacked=true").text  # [web] viewers_may_acknowledge = true
    name = guard(live_gate, "operator")
    client.cookies.clear()
    csrf = login(client, name)
    assert 'class="ack"' in client.get("/alarms?unacked=true").text
    r = client.post(f"/api/alarms/{alarm.id}/ack", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"id": alarm.id, "acknowledged_by": name}
    stored = next(a for a in live_gate.store.alarms(kind="stranger", limit=1000) if a.id == alarm.id)
    assert stored.acknowledged_by == name and stored.acknowledged_at is not None
    assert client.post(f"/api/alarms/{alarm.id}/ack", headers={"X-CSRF-Token": csrf}).status_code == 404
    listed = client.get("/api/alarms", params={"kind": "stranger"}).json()
    assert next(a for a in listed if a["id"] == alarm.id)["acknowledged_by"] == name
    assert f"Acknowledged by {name}" in client.get("/alarms").text
    assert any(a.actor == name and a.action == "alarm_ack" for a in live_gate.store.audit_entries(limit=100))


def test_events_filter_and_pagination(live_gate: Gate) -> None:
    base = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    made = []
    for i in range(7):  # a quiet morning long ago: 4 grants of R002, 3 denials of strangers
        grant = i % 2 == 0
        ev = EventRecord(ts=base + timedelta(minutes=i), gate_id="web-gate", direction="in",
                         decision="grant" if grant else "deny", person_id="R002" if grant else None,
                         reasons=({"code": "ok", "effect": "allow", "params": {}},) if grant else
                         ({"code": "unknown_face", "effect": "deny", "params": {"score": 0.21}},))
        live_gate.writer.submit(live_gate.store.record_event, ev, passage=False).result(10)
        made.append(ev)
    with TestClient(create_app(live_gate.web_parts(), WebConfig(language="en", max_events_page=3)),
                    follow_redirects=False) as c:
        login(c, guard(live_gate, "viewer"))
        window = {"since": "2021-03-01T00:00:00+00:00", "until": "2021-03-02T00:00:00+00:00"}
        everything = c.get("/api/events", params={**window, "limit": 50}).json()
        assert len(everything) == 3  # capped by max_events_page
        pages = [c.get("/api/events", params={**window, "limit": 3, "offset": o}).json() for o in (0, 3, 6, 9)]
        ids = [e["event_id"] for p in pages for e in p]
        assert ids == [e.event_id for e in reversed(made)] and pages[3] == []
        grants = c.get("/api/events", params={**window, "decision": "grant", "person_id": "R002"}).json()
        assert len(grants) == 3 and {e["person_id"] for e in grants} == {"R002"}
        denials = c.get("/api/events", params={**window, "decision": "deny"}).json()
        assert {e["decision"] for e in denials} == {"deny"} and len(denials) == 3
        html = c.get("/events", params={"since": "2021-03-01T00:00", "until": "2021-03-02T00:00", "page": 2}).text
        assert "Page 2" in html and 'rel="prev"' in html and 'rel="next"' in html
        assert made[3].event_id in html and made[6].event_id not in html
        last = c.get("/events", params={"since": "2021-03-01T00:00", "until": "2021-03-02T00:00", "page": 3}).text
        assert made[0].event_id in last and 'rel="next"' not in last
        denied = c.get("/events", params={"since": "2021-03-01T00:00", "until": "2021-03-02T00:00",
                                          "decision": "deny"}).text
        assert "Unknown face (score 0.21)" in denied and "Li Na" not in denied
        assert "Li Na (R002)" in c.get("/events", params={"person": "R002", "since": "2021-03-01T00:00",
                                                          "until": "2021-03-02T00:00"}).text


def test_live_decisions_have_details_and_face_crops(live_gate: Gate, client: TestClient) -> None:
    login(client, guard(live_gate, "viewer"))
    assert wait_for(lambda: any(e["reasons"][0]["code"] != "manual_open" and e["decision"] == "grant"
                                for e in client.get("/api/events", params={"decision": "grant"}).json()), 30)
    ev = next(e for e in client.get("/api/events", params={"decision": "grant"}).json()
              if e["reasons"][0]["code"] == "ok")
    detail = client.get(f"/api/events/{ev['event_id']}").json()
    assert detail["scores"]["score"] > 0.5 and detail["temperature"]["body_c"] > 35 and detail["has_snapshot"]
    crop = client.get(f"/api/events/{ev['event_id']}/snapshot.jpg")
    assert crop.status_code == 200 and crop.content[:3] == b"\xff\xd8\xff"
    page = client.get(f"/events/{ev['event_id']}").text
    assert "All checks passed" in page and "snapshot.jpg" in page and "body_c" in page
    assert client.get("/api/events/nope").status_code == 404
    frames = client.get("/preview.mjpg", params={"frames": 2})
    assert frames.headers["content-type"].startswith("multipart/x-mixed-replace")
    assert frames.content.count(b"\xff\xd8\xff") == 2
    boxes: list[tuple[int, int, int, int]] = []

    def green_box() -> bool:  # a resident in view gets a green box and a name (frames move on: keep the hit)
        box = _named_box(client)
        boxes.extend([box] if box else [])
        return bool(boxes)

    assert wait_for(green_box, 30)
    x0, y0, x1, y1 = boxes[0]
    assert 40 <= x1 - x0 <= 640 and 40 <= y1 - y0 <= 480


def _named_box(client: TestClient) -> tuple[int, int, int, int] | None:
    """The green (named resident) rectangle drawn on one preview frame: its corners, or None."""
    body = client.get("/preview.mjpg", params={"frames": 1}).content
    start = body.find(b"\xff\xd8\xff")
    end = body.find(b"\xff\xd9", start)
    image = cv2.imdecode(np.frombuffer(body[start:end + 2], np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (image[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((g > 150) & (r < 90) & (b < 90))  # the (0, 200, 0) pen, through JPEG
    if xs.size < 150:
        return None
    x0, x1, y0, y1 = int(np.percentile(xs, 1)), int(np.percentile(xs, 99)), int(np.percentile(ys, 1)), \
        int(np.percentile(ys, 99))
    on_edge = (np.minimum(abs(xs - x0), abs(xs - x1)) <= 4) | (np.minimum(abs(ys - y0), abs(ys - y1)) <= 4)
    above = ys < y0 + 20  # the name, written just above the box
    return (x0, y0, x1, y1) if float(np.mean(on_edge | above)) > 0.8 and x1 - x0 > 20 and y1 - y0 > 20 else None


def test_persons_search_shows_no_embeddings(live_gate: Gate, client: TestClient) -> None:
    assert client.get("/api/persons").status_code == 401
    login(client, guard(live_gate, "viewer"))
    found = client.get("/api/persons", params={"q": "tom"}).json()
    assert [p["id"] for p in found] == ["R001"]
    assert set(found[0]) == {"id", "name", "kind", "status", "unit", "valid_from", "valid_until", "uses",
                             "max_uses"}
    everyone = client.get("/api/persons").text
    assert "R005" in everyone and "embedding" not in everyone and "template" not in everyone
    html = client.get("/persons", params={"q": "li"}).text
    assert "Li Na" in html and "Liu Yang" in html and "Tom Hanks" not in html
    assert "embedding" not in html.lower()


def test_healthz_metrics_and_openapi(live_gate: Gate, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True, "gate_id": "web-gate"}
    csrf = login(client, guard(live_gate, "operator"))
    assert client.post("/api/open", json={"reason": "metrics"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    live_gate.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="fever", severity="high", message="fever 38.9 C"))

    def metric(text: str, name: str) -> float:
        m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else -1.0

    assert wait_for(lambda: metric(client.get("/metrics").text,  # a face decided while this app listens
                                   "edge_gate_decision_latency_seconds_count") >= 1, 30)
    text = client.get("/metrics").text
    assert metric(text, 'edge_gate_decisions_total{outcome="grant"}') >= 1
    assert metric(text, 'edge_gate_alarms_total{kind="fever"}') == 1
    assert 1 <= metric(text, "edge_gate_relay_pulses_total") <= live_gate.relay.stats.pulses  # it goes on pulsing
    assert metric(text, "edge_gate_camera_fps") > 0 and metric(text, "edge_gate_outbox_depth") >= 1
    assert metric(text, "edge_gate_up") == 1
    assert metric(text, "edge_gate_camera_skipped_fps") >= 0  # exported (-1: missing)
    status = client.get("/").text
    assert re.search(r'id="fact-fps">[0-9.]+ / [0-9.]+<', status)  # the guard sees fps and skipped fps
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/events", "/api/open", "/api/alarms/{alarm_id}/ack", "/api/persons", "/healthz"} <= paths
    assert not paths & {"/", "/login", "/logout", "/events", "/alarms", "/persons", "/preview.mjpg"}
    assert "embedding" not in str(schema["components"]["schemas"]["PersonOut"])


def test_language_from_browser_or_guard(live_gate: Gate) -> None:
    with TestClient(create_app(live_gate.web_parts()), follow_redirects=False) as c:  # default zh-CN
        assert "保安登录" in c.get("/login").text
        en = c.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}).text
        assert "Guard login" in en and "保安登录" not in en
        zh = c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        assert "保安登录" in zh.text and '<html lang="zh-CN">' in zh.text
        name = guard(live_gate, "viewer")
        login(c, name)
        assert "最近一次判定" in c.get("/", headers={"Accept-Language": "zh-CN"}).text
        r = c.get("/lang/en", params={"back": "/alarms"})
        assert r.status_code == 303 and r.headers["location"] == "/alarms"
        assert "Last decision" in c.get("/", headers={"Accept-Language": "zh-CN"}).text  # the guard's choice wins
        assert c.get("/lang/zh-CN", params={"back": "//evil.example/"}).headers["location"] == "/"


def test_security_headers_and_escaping(live_gate: Gate, client: TestClient) -> None:
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    login(client, guard(live_gate, "viewer"))
    evil = AlarmRecord(ts=datetime.now(UTC), kind="care_watch", severity="warning", message="<script>alert(1)</script>")
    live_gate.writer.submit(live_gate.store.record_alarm, evil).result(10)
    page = client.get("/alarms").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _fill(store: Store) -> None:
    """Fill a size-limited store: big events, then audit rows down to the smallest there is."""
    pad = ({"code": "pad", "effect": "deny", "params": {"pad": "p" * 2000}},)
    with pytest.raises(StoreFullError):
        for _ in range(10_000):
            store.record_event(EventRecord(ts=datetime.now(UTC), gate_id="web-gate", direction="in",
                                           decision="deny", reasons=pad), passage=False)
    for details in ({"pad": "p" * 200}, {}):
        with pytest.raises(StoreFullError):
            for _ in range(10_000):
                store.audit("x", "x", details)


def test_audit_rows_kept_on_a_full_disk_and_written_once_there_is_room(live_gate: Gate, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "full.db", max_bytes=256 * 1024)
    writer = StoreWriter(store)
    name = "full-disk-operator"
    try:
        store.add_guard(name, "viewer", hash_password(PASSWORD))
        _fill(store)
        filled = len(store.audit_entries(limit=10_000))
        parts = replace(live_gate.web_parts(), store=store, writes=GuardWrites(writer))  # the real gate, full disk
        with TestClient(create_app(parts, WebConfig(language="en")), follow_redirects=False) as c:
            form = c.get("/login")
            wrong = c.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": "wrong password!"})
            assert wrong.status_code == 401
            csrf = login(c, name)
            r = c.post("/api/open", json={"reason": "let me"}, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 403  # a viewer: manual_open_refused is audited
            assert c.post("/logout", data={"csrf": csrf}).status_code == 303
        expected = [(name, "login_failed"), (name, "login"), (name, "manual_open_refused"),
                    (name, "logout")]
        assert wait_for(lambda: writer.pending == 0 and writer.kept == len(expected), 10), (writer.kept, writer.error)
        assert writer.error is not None and "full" in writer.error
        assert len(store.audit_entries(limit=10_000)) == filled  # refused, not written
        happened = datetime.now(UTC)
        # room again (retention deletes synced events), then what the supervisor does every pass
        seqs = [row.seq for row in store.pending_outbox(10_000)]
        writer.submit(store.ack_outbox, seqs).result(10)
        assert writer.submit(store.purge_synced_events, timedelta(0), now=happened + timedelta(days=1)).result(10)
        writer.retry_kept()
        assert wait_for(lambda: writer.pending == 0 and writer.kept == 0, 10), (writer.kept, writer.error)
        assert writer.error is None
        written = [a for a in store.audit_entries(limit=10_000) if a.actor != "x"]
        assert [(a.actor, a.action) for a in reversed(written)] == expected  # each once, in order
        assert all(a.ts <= happened for a in written)  # stamped when it happened, not when finally written
        assert written[-1].details == {"ip": "testclient"}
    finally:
        writer.close(10)


def test_docs_page_lists_the_api_from_its_own_schema(live_gate: Gate) -> None:
    anonymous = TestClient(create_app(live_gate.web_parts(), WebConfig(language="en")), follow_redirects=False)
    page = anonymous.get("/docs")
    assert page.status_code == 200 and "https://" not in page.text  # nothing loaded from elsewhere (no CDN)
    schema = anonymous.get("/openapi.json").json()
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in page.text  # every documented operation, nothing made up
    assert "<code>since</code>" in page.text and "X-CSRF-Token" in page.text and "/openapi.json" in page.text
    zh = anonymous.get("/docs", headers={"Accept-Language": "zh-CN"})
    assert "JSON 接口" in zh.text
