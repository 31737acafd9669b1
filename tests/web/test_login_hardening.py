"""Logging in to the guards' page served by uvicorn for a running gate, attacked as the issue found it:
wrong passwords behind forged X-Forwarded-For values, a proxy that is trusted and one that is not, and
login CSRF by cookie tossing from a page on another port of the same host, in a real Chromium."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Browser
from support.browser import chromium
from web_helpers import PASSWORD, add_guard, csrf_of, wait_for

from edge.config.web import WebConfig
from edge.gate import Gate
from edge.web.server import WebServer


@pytest.fixture(scope="module")
def plain(live_gate: Gate) -> Iterator[WebServer]:
    """The page as installed: no trusted proxy."""
    web = WebServer(live_gate.web_parts(), WebConfig(port=0, language="en"))
    assert web.start()
    yield web
    web.stop()


def attempt(client: httpx.Client, name: str, password: str, headers: dict[str, str] | None = None) -> int:
    form = client.get("/login", headers=headers)
    r = client.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": password}, headers=headers)
    return r.status_code


def lockouts(gate: Gate, name: str) -> int:
    return sum(a.details.get("guard") == name for a in gate.store.alarms(kind="login_lockout", limit=1000))


def test_forged_forwarded_for_is_ignored_and_the_real_guard_still_gets_in(live_gate: Gate, plain: WebServer) -> None:
    name = add_guard(live_gate, "gate-guard-li", "operator")
    with httpx.Client(base_url=plain.url, follow_redirects=False, timeout=30.0) as attacker:
        codes = [attempt(attacker, name, f"guess {i}", {"X-Forwarded-For": f"10.2.{i}.9"}) for i in range(40)]
    assert codes[:5] == [401] * 5 and 429 in codes, codes  # five free failures, then the backoff
    assert codes.count(401) <= 10 and codes.count(429) >= 30, codes  # the wait doubles: few guesses reach the hash

    def failed() -> list[dict[str, object]]:
        return [e.details for e in live_gate.store.audit_entries(limit=5000)
                if e.actor == name and e.action == "login_failed"]

    assert wait_for(lambda: len(failed()) == codes.count(401), 10)
    assert all(d == {"ip": "127.0.0.1"} for d in failed()), failed()[:3]  # the claimed addresses: nowhere
    # the real guard at the gate's own terminal (another address) logs in right after
    terminal = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=plain.url, follow_redirects=False, timeout=30.0, transport=terminal) as real:
        assert attempt(real, name, PASSWORD) == 303
        assert real.get("/").status_code == 200
    assert wait_for(lambda: any(e.actor == name and e.action == "login" and e.details["ip"] == "127.0.0.2"
                                for e in live_gate.store.audit_entries(limit=5000)), 10)
    assert wait_for(lambda: lockouts(live_gate, name) >= 1, 10)
    assert lockouts(live_gate, name) == 1  # one alarm for the name, not one per guess


def test_a_trusted_proxy_names_the_client_and_limits_follow_it(live_gate: Gate) -> None:
    web = WebServer(live_gate.web_parts(), WebConfig(port=0, language="en", trusted_proxies=["127.0.0.0/8"],
                                                     login_free_failures=2))
    assert web.start()
    try:
        name = add_guard(live_gate, "gate-guard-wang", "viewer")
        with httpx.Client(base_url=web.url, follow_redirects=False, timeout=30.0) as proxy:
            far = {"X-Forwarded-For": "203.0.113.7"}
            assert [attempt(proxy, name, "wrong", far) for _ in range(3)] == [401, 401, 401]
            assert attempt(proxy, name, PASSWORD, far) == 429  # 203.0.113.7 is held back ...
            other = {"X-Forwarded-For": "203.0.113.8", "Forwarded": "for=203.0.113.7"}  # Forwarded: not read
            assert attempt(proxy, name, PASSWORD, other) == 303  # ... another client behind the same proxy is not
        def entries() -> list[dict[str, object]]:
            return [e.details for e in live_gate.store.audit_entries(limit=5000) if e.actor == name]

        assert wait_for(lambda: {"ip": "127.0.0.1", "forwarded_for": "203.0.113.8", "role": "viewer"} in entries(), 10)
        assert {"ip": "127.0.0.1", "forwarded_for": "203.0.113.7"} in entries()
    finally:
        web.stop()


TOSSING_PAGE = """<!doctype html><html><body>
<form id="f" method="post" action="{gate}/login">
<input name="csrf" value="{token}"><input name="name" value="{name}"><input name="password" value="{password}">
</form>
<script>
document.cookie = "gate_login_csrf={token}; path=/";
document.getElementById("f").submit();
</script></body></html>"""


class _Attacker(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # http.server's name for it
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_login_csrf_by_cookie_tossing_from_another_port_is_refused(live_gate: Gate, plain: WebServer,
                                                                   browser: Browser) -> None:
    attacker_name = add_guard(live_gate, "attacker-viewer", "viewer")
    victim_name = add_guard(live_gate, "victim-operator", "operator")
    with httpx.Client(base_url=plain.url, follow_redirects=False, timeout=30.0) as own:
        token = csrf_of(own.get("/login").text)  # a token the gate really issued, with the attacker's cookie
    _Attacker.page = TOSSING_PAGE.format(gate=plain.url, token=token, name=attacker_name, password=PASSWORD).encode()
    evil = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()  # the victim has not opened the gate's login form (no cookie of its own)
        response_codes: list[int] = []
        page.on("response", lambda r: response_codes.append(r.status) if r.url.endswith("/login") else None)
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/", wait_until="commit")
        page.wait_for_url(lambda u: u.startswith(plain.url), wait_until="domcontentloaded")  # the form went
        assert response_codes == [403] and page.url == f"{plain.url}/login", (response_codes, page.url)
        assert not any(c["name"] == "gate_session" for c in context.cookies())
        page.goto(f"{plain.url}/", wait_until="domcontentloaded")
        assert page.url.endswith("/login")  # not logged in as the attacker
        # the victim's own login in the same browser still works (tokens and the origin check pass)
        page.fill("input[name=name]", victim_name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{plain.url}/", wait_until="domcontentloaded")
        assert victim_name in page.content()
    finally:
        context.close()
        evil.shutdown()
    assert not any(e.actor == attacker_name and e.action == "login" for e in live_gate.store.audit_entries(limit=5000))


def test_a_burst_of_parallel_guesses_gets_no_more_than_guesses_in_a_row(live_gate: Gate, plain: WebServer) -> None:
    name = add_guard(live_gate, "gate-guard-zhao", "operator")
    posts = 20
    barrier = threading.Barrier(posts)
    codes: list[int] = []

    def guess(i: int) -> None:
        with httpx.Client(base_url=plain.url, follow_redirects=False, timeout=60.0) as c:
            token = csrf_of(c.get("/login").text)  # each with its own valid form token
            barrier.wait(60)
            r = c.post("/login", data={"csrf": token, "name": name, "password": f"burst {i}"})
            codes.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(posts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert len(codes) == posts and set(codes) <= {401, 429}, codes
    assert codes.count(401) <= 5, codes  # one attempt per (address, name) at the hash at a time
    terminal = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=plain.url, follow_redirects=False, timeout=30.0, transport=terminal) as real:
        assert attempt(real, name, PASSWORD) == 303
