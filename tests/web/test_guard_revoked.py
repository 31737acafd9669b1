"""A guard's rights change while they are logged in, against the page served by uvicorn for a running gate:
a role change in the store (operator -> viewer) is honoured at the next request, and `gate guard disable
NAME` (run as its own process, like an administrator would) ends everything the session holds: the open
live stream (at its next heartbeat, with a `logout` event) and the open camera preview (at its next
frame) end by themselves, the next request is sent to the login form (pages) or refused (API), and the
right password no longer logs the guard in."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from web_helpers import PASSWORD, add_guard, csrf_of

from edge.config.web import WebConfig
from edge.gate import Gate
from edge.web.auth import Sessions
from edge.web.server import WebServer

REPO = Path(__file__).resolve().parents[2]
STREAM_DEADLINE_S = 60.0  # a stream still open this long after the guard was disabled: the check failed


@pytest.fixture(scope="module")
def server(live_gate: Gate) -> Iterator[WebServer]:
    web = WebServer(live_gate.web_parts(), WebConfig(port=0, language="en"))
    assert web.start()
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture(scope="module")
def served(server: WebServer) -> str:
    return server.url


def log_in(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": password})


@dataclass
class StreamWatch:
    """Reads one streaming response on a thread: `started` once the first item came, `ended` once the
    server closed the stream; a stream still going after `stop_by` is abandoned (still_open)."""

    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    seen: list[bytes] = field(default_factory=list)
    still_open: bool = False
    error: str | None = None
    stop_by: float = float("inf")
    ended_at: float = 0.0  # time.monotonic()
    ended_check: int = -1  # the session checks run when it ended
    sessions: Sessions | None = None


def watch(client: httpx.Client, path: str, first: bytes, sessions: Sessions | None = None) -> StreamWatch:
    w = StreamWatch(sessions=sessions)

    def read() -> None:
        try:
            with client.stream("GET", path, timeout=30.0) as r:
                assert r.status_code == 200, r.status_code
                for chunk in r.iter_raw():
                    w.seen.append(chunk)
                    if first in b"".join(w.seen[-3:]):
                        w.started.set()
                    if time.monotonic() > w.stop_by:
                        w.still_open = True
                        return
        except Exception as exc:  # reported by the test, not swallowed
            w.error = f"{type(exc).__name__}: {exc}"
        finally:
            w.ended_at = time.monotonic()
            w.ended_check = w.sessions.checks if w.sessions is not None else -1
            w.ended.set()

    threading.Thread(target=read, name=f"watch {path}", daemon=True).start()
    return w


def test_role_change_and_disabled_guard_end_the_session_and_its_streams(live_gate: Gate, server: WebServer,
                                                                       served: str) -> None:
    sessions = server.state.sessions
    name = add_guard(live_gate, "op-revoked", "operator")
    headers = {"Accept-Language": "en"}
    with httpx.Client(base_url=served, follow_redirects=False, headers=headers, timeout=30.0) as guard:
        assert log_in(guard, name).status_code == 303
        page = guard.get("/")
        assert page.status_code == 200 and 'id="open-form"' in page.text
        csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
        opened = guard.post("/api/open", json={"reason": "before the change"}, headers={"X-CSRF-Token": csrf})
        assert opened.status_code == 200, opened.text

        # the administrator makes the guard a viewer (no store call for it yet: the guards table itself)
        with sqlite3.connect(live_gate.store.path) as db:
            db.execute("UPDATE guards SET role = 'viewer' WHERE name = ?", (name,))
        db.close()
        refused = guard.post("/api/open", json={"reason": "after the change"}, headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403
        live_gate.writer.submit(live_gate.store.outbox_depth).result(10)  # in order: an open would be audited by now
        opens = [e for e in live_gate.store.audit_entries(limit=1000) if e.actor == name and e.action == "manual_open"
                 and e.details.get("reason") == "after the change"]
        assert opens == []
        assert 'id="open-form"' not in guard.get("/").text

        # the viewer watches the live stream and the camera preview
        live = watch(guard, "/api/stream", b"event: health", sessions)
        preview = watch(guard, "/preview.mjpg", b"Content-Type: image/jpeg", sessions)
        for w in (live, preview):
            assert w.started.wait(30) and not w.ended.is_set(), w.error

        cli = subprocess.run([sys.executable, "-m", "edge", "guard", "disable", name, "--data-dir",
                              str(live_gate.cfg.gate.data_dir)], capture_output=True, text=True, timeout=120,
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert cli.returncode == 0 and f"guard {name} disabled" in cli.stdout, cli.stderr[-2000:]
        disabled_at, checks_then = time.monotonic(), sessions.checks
        # no request in between: each stream must notice by itself
        for w in (live, preview):
            w.stop_by = time.monotonic() + STREAM_DEADLINE_S
        for w in (live, preview):
            assert w.ended.wait(STREAM_DEADLINE_S + 30), "a stream neither ended nor sent anything"
            assert w.error is None and not w.still_open, (w.error, b"".join(w.seen)[-300:])
            # one check may have read the table before the disable; the next one sees it (a check every
            # 0.5 s): the stream is closed before a third, whatever the machine's speed
            assert w.ended_check - checks_then <= 2, (w.ended_check, checks_then)
            print(f"stream closed {w.ended_at - disabled_at:.2f} s after the disable")
        assert b"event: logout" in b"".join(live.seen)  # the page goes to the login form

        r = guard.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert guard.get("/api/status").status_code == 401
        assert guard.get("/preview.mjpg", params={"frames": 1}).headers.get("location") == "/login"
        assert guard.post("/api/open", json={"reason": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 401

    with httpx.Client(base_url=served, follow_redirects=False, headers=headers, timeout=30.0) as again:
        r = log_in(again, name)
        assert r.status_code == 401 and "Wrong name or password" in r.text
        assert again.get("/api/status").status_code == 401
    actions = [(a.actor, a.action) for a in live_gate.store.audit_entries(limit=100)]
    assert ("cli", "guard_disable") in actions and (name, "login_failed") in actions


def test_logout_ends_the_streams_of_that_session_only(live_gate: Gate, server: WebServer, served: str) -> None:
    sessions = server.state.sessions
    name = add_guard(live_gate, "op-logout", "viewer")
    with (httpx.Client(base_url=served, follow_redirects=False, timeout=30.0) as leaving,
          httpx.Client(base_url=served, follow_redirects=False, timeout=30.0) as staying):
        assert log_in(leaving, name).status_code == 303 and log_in(staying, name).status_code == 303
        streams = [watch(c, path, first, sessions) for c in (leaving, staying) for path, first in
                   (("/api/stream", b"event: health"), ("/preview.mjpg", b"Content-Type: image/jpeg"))]
        for w in streams:
            assert w.started.wait(30) and not w.ended.is_set(), w.error
        csrf = leaving.get("/").text.split('data-csrf="', 1)[1].split('"', 1)[0]
        checks_then = sessions.checks
        assert leaving.post("/logout", data={"csrf": csrf}).status_code == 303
        for w in streams[:2]:
            w.stop_by = time.monotonic() + STREAM_DEADLINE_S
            assert w.ended.wait(STREAM_DEADLINE_S + 30) and w.error is None and not w.still_open, w.error
            assert w.ended_check - checks_then <= 2  # logout ends the session at once: no check is needed
        assert b"event: logout" in b"".join(streams[0].seen)
        # the guard's other browser is another session: its streams go on
        for w in streams[2:]:
            seen = len(w.seen)
            assert wait_until_more(w, seen), "the other session's stream stopped too"
            assert not w.ended.is_set()
            w.stop_by = 0.0  # let the reader go


def wait_until_more(w: StreamWatch, seen: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(w.seen) > seen + 1:
            return True
        time.sleep(0.05)
    return False


def test_a_role_change_reloads_the_stream_and_an_expired_session_ends_it(live_gate: Gate, server: WebServer,
                                                                         served: str) -> None:
    sessions = server.state.sessions
    name = add_guard(live_gate, "op-promoted", "viewer")
    with httpx.Client(base_url=served, follow_redirects=False, timeout=30.0) as guard:
        assert log_in(guard, name).status_code == 303
        live = watch(guard, "/api/stream", b"event: health", sessions)
        preview = watch(guard, "/preview.mjpg", b"Content-Type: image/jpeg", sessions)
        for w in (live, preview):
            assert w.started.wait(30) and not w.ended.is_set(), w.error
        with sqlite3.connect(live_gate.store.path) as db:
            db.execute("UPDATE guards SET role = 'operator' WHERE name = ?", (name,))
        db.close()
        checks_then = sessions.checks
        for w in (live, preview):
            w.stop_by = time.monotonic() + STREAM_DEADLINE_S
            assert w.ended.wait(STREAM_DEADLINE_S + 30) and w.error is None and not w.still_open, w.error
            assert w.ended_check - checks_then <= 2
        assert b"event: reload" in b"".join(live.seen)  # the page reloads with the operator's buttons
        assert 'id="open-form"' in guard.get("/").text  # the session goes on, with its new role

    short = WebServer(live_gate.web_parts(), WebConfig(port=0, language="en", session_hours=10 / 3600))  # 10 s
    assert short.start()
    try:
        with httpx.Client(base_url=short.url, follow_redirects=False, timeout=30.0) as guard:
            assert log_in(guard, name).status_code == 303
            live = watch(guard, "/api/stream", b"event: health", short.state.sessions)
            assert live.started.wait(30), live.error
            live.stop_by = time.monotonic() + STREAM_DEADLINE_S
            assert live.ended.wait(STREAM_DEADLINE_S + 30) and live.error is None and not live.still_open
            assert b"event: logout" in b"".join(live.seen)  # expired: back to the login form
            assert guard.get("/api/status").status_code == 401
    finally:
        short.stop()
