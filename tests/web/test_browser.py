"""End to end in a real headless Chromium (Debian `chromium`, driven by Playwright) against the running
gate: `gate.start()` serves the page (uvicorn on a free port); the replay camera is plugged in once the
operator is logged in, so the granted resident arrives live over SSE; the operator acknowledges the
stranger alarm and opens the gate by hand (the simulated relay pulses); a viewer has no open button and
the API refuses the viewer's POST. Screenshots at 1280x800 and 390x844 go to test-artifacts/."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect
from support.browser import chromium
from web_helpers import PASSWORD, add_guard, make_config, wait_for

from edge.config import load_config
from edge.config.web import WebConfig
from edge.gate import Gate
from edge.web.app import create_app
from edge.web.server import WebServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/login", wait_until="domcontentloaded")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/", wait_until="domcontentloaded")
    expect(page.locator("body")).to_have_attribute("data-stream", "open", timeout=10_000)


# Counts the tones the page really starts on Chromium's Web Audio (the real AudioContext, observed).
COUNT_BEEPS = """
window.__beeps = 0; window.__audioState = null;
(function () {
  const C = window.AudioContext;
  const create = C.prototype.createOscillator;
  C.prototype.createOscillator = function () {
    const osc = create.call(this), start = osc.start.bind(osc), ctx = this;
    osc.start = function (...args) { window.__beeps += 1; window.__audioState = ctx.state; return start(...args); };
    return osc;
  };
})();
"""


@pytest.mark.slow
def test_guards_page_in_chromium(web_prepared: Path, tmp_path: Path, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    camera = tmp_path / "camera"  # not plugged in yet
    cfg = make_config(web_prepared, tmp_path, camera, '[web]\nport = 0\nlanguage = "en"\n', fps=20)
    gate = Gate(load_config(cfg))
    add_guard(gate, "op-li", "operator")
    add_guard(gate, "view-wang", "viewer")
    stop = threading.Event()

    def supervise() -> None:  # what gate.run() does each second, without taking the signal handlers
        while not stop.wait(0.5):
            gate.check()

    supervisor = threading.Thread(target=supervise, daemon=True)
    gate.start()
    supervisor.start()
    url = gate.web_server.url
    try:
        # the port is in use: alarm, the gate goes on
        taken = WebServer(gate.web_parts(), WebConfig(port=gate.web_server.port))
        assert not taken.start(timeout=5)
        assert wait_for(lambda: any(a.kind == "web_fault" for a in gate.store.alarms(limit=20)), 5)
        desk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        desk.add_init_script(COUNT_BEEPS)
        page = desk.new_page()
        log_in(page, url, "op-li")
        expect(page.locator("#last")).to_have_class("decision none")
        page.mouse.click(2, 2)  # the guard touches the page once: browsers allow sound only after that
        assert page.evaluate("window.__beeps") == 0

        shutil.copytree(web_prepared / "scene", tmp_path / "staging")
        (tmp_path / "staging").rename(camera)  # plugged in at once; Tom Hanks walks in first
        tom = page.locator("#recent tbody tr.grant", has_text="Tom Hanks (R001)").first
        expect(tom).to_be_visible(timeout=30_000)  # arrived over SSE: the page was not reloaded
        expect(tom.locator(".verdict")).to_have_text("GRANTED")
        expect(page.locator("#last")).to_have_class(re.compile(r"decision (grant|deny) fresh"))

        stranger = page.locator("#alarm-list tr.alarm.open", has_text="Stranger").first
        expect(stranger).to_be_visible(timeout=30_000)
        expect(page.locator("#alarm-banner")).to_be_visible()
        assert page.evaluate("window.__audioState") == "running"
        assert page.evaluate("window.__beeps") >= 3  # the alarm was heard: three tones per alarm
        expect(page.locator("#sound-hint")).to_be_hidden()
        alarm_id = stranger.get_attribute("data-id")
        assert alarm_id
        stranger.locator("button.ack").click()
        expect(page.locator(f'#alarm-list tr[data-id="{alarm_id}"] .acked-by')).to_have_text("✓ op-li")
        acked = [a for a in gate.store.alarms(kind="stranger", limit=100) if a.id == alarm_id]
        assert acked and acked[0].acknowledged_by == "op-li"

        pulses = gate.relay.stats.pulses
        page.fill("#open-reason", "delivery van, driver known")
        page.click("#open-button")
        expect(page.locator("#open-message")).to_have_text("Gate opened; recorded.")
        assert wait_for(lambda: gate.relay.stats.pulses > pulses, 5)
        expect(page.locator("#recent tbody tr", has_text="Manual open by op-li").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "status-1280x800.png"))
        page.goto(url + "/events", wait_until="domcontentloaded")
        expect(page.locator("table.events")).to_contain_text("Tom Hanks")
        page.screenshot(path=str(ARTIFACTS / "events-1280x800.png"))

        phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                    has_touch=True)
        small = phone.new_page()
        log_in(small, url, "view-wang")
        expect(small.locator("h2").first).to_have_text("摄像头")
        assert small.locator("#open-form").count() == 0 and small.locator("#open-button").count() == 0
        status = small.evaluate("""() => fetch('/api/open', {method: 'POST', headers: {'Content-Type':
            'application/json', 'X-CSRF-Token': document.body.dataset.csrf}, body: JSON.stringify({reason: 'x'})})
            .then(r => r.status)""")
        assert status == 403
        # the writer keeps order: once it has run a later write, a manual open by the viewer would be in the audit
        # (the relay's pulse count also moves with residents' grants, so it proves nothing here)
        gate.writer.submit(gate.store.outbox_depth).result(10)
        assert not [e for e in gate.store.audit_entries(limit=1000) if e.actor == "view-wang"
                    and e.action == "manual_open"]
        expect(small.locator("#last")).to_have_class(re.compile(r"decision (grant|deny)"))
        assert small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        small.screenshot(path=str(ARTIFACTS / "status-390x844.png"), full_page=True)
        desk.close()
        phone.close()
    finally:
        stop.set()
        supervisor.join(5)
        gate.shutdown()
    with pytest.raises(httpx.ConnectError):  # the page went down with the gate
        httpx.get(url + "/healthz", timeout=2)
    with TestClient(create_app(gate.web_parts())) as c:  # the stopped gate is not alive
        assert c.get("/healthz").status_code == 503
