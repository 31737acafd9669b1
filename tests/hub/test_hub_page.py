"""The hub's admin page in a real headless Chromium (Playwright), on the SQLite register: an office clerk
signs in, sees the gate board, adds a visitor from an uploaded photo (templates made by the hub's own
face engine, the photo not kept), suspends a resident, runs a 1:1 check (the same face scores high,
another face low, nothing stored), acknowledges a care-watch alarm once, switches to Chinese; a
disabled account loses its session at once; the API refuses a POST without the CSRF token."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, expect

from edge.hub.db import HubDatabase
from edge.hub.register import Register
from edge.hub.watch import Watch
from edge.hub.web import HubWeb, add_account, create_hub_app, disable_account
from edge.protocol.signing import SigningKey
from tests.hub.test_register import person
from tests.support.browser import chromium

PASSWORD = "office-passw0rd"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def site(tmp_path: Path, engine) -> Iterator[tuple[str, HubDatabase]]:  # type: ignore[no-untyped-def]
    db = HubDatabase.open(str(tmp_path / "hub.db"))
    reg = Register(db)
    reg.set_gate("north-1", SigningKey.generate().public_text, "admin")
    reg.upsert([person("R1", 1, name="Li Na"), person("R2", 2, name="Old Wang", care_watch_hours=1)], "admin")
    with db.tx():
        db.execute("UPDATE persons SET updated_at = ? WHERE id = 'R2'",
                   ((datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),))
    Watch(db).check()  # R2 not seen for 3 h: one care-watch alarm
    add_account(db, "clerk", "office", PASSWORD)

    def embed(photo: bytes) -> list[float]:
        from edge.vision.image import decode_image

        faces = engine.analyze(decode_image(photo, "upload"))
        if not faces:
            raise ValueError("no face found in the photo")
        return [float(x) for x in faces[0].embedding]

    app = create_hub_app(HubWeb(db, embed, language="en"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", db
    finally:
        server.should_exit = True
        thread.join(10)
        db.close()


def test_an_office_clerk_works_the_register_in_chromium(browser: Browser, site: tuple[str, HubDatabase],
                                                        hanks_path: Path, t1_path: Path, tmp_path: Path) -> None:
    url, db = site
    page = browser.new_page()
    page.goto(url + "/login")
    page.fill("input[name=name]", "clerk")
    page.fill("input[name=password]", "wrong password!")
    page.click("#login")
    expect(page.locator("#login-error")).to_be_visible()
    page.fill("input[name=name]", "clerk")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_url(url + "/")
    expect(page.locator("#gates tr[data-gate=north-1]")).to_be_visible()
    expect(page.locator("#care")).to_contain_text("R2")
    expect(page.locator("#open-alarms")).to_have_text("1")

    page.goto(url + "/persons")
    page.fill("#add-person input[name=id]", "V100")
    page.fill("#add-person input[name=name]", "Courier Zhao")
    page.fill("#add-person input[name=group]", "Building 2")
    page.select_option("#add-person select[name=kind]", "visitor")
    page.set_input_files("#add-person input[name=photo]", str(hanks_path))
    page.click("#add-person button[type=submit]")
    expect(page.locator("#persons tr[data-person=V100] .groups")).to_have_text("Building 2")
    page.goto(url + "/persons?group=Building%202")
    expect(page.locator("#persons tr[data-person]")).to_have_count(1)
    page.goto(url + "/persons")
    v100 = Register(db).person("V100")
    assert v100 is not None and v100["kind"] == "visitor" and len(v100["templates"]["embeddings"]) == 1
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".jpg", ".png")]  # the photo is not kept
    page.click("#persons tr[data-person=R1] button")
    expect(page.locator("#persons tr[data-person=R1] .status")).to_have_text("suspended")
    assert Register(db).changes_after(3)[-1].body["patches"] == [{"id": "R1", "status": "suspended"}]

    page.goto(url + "/check")
    page.set_input_files("#check input[name=id_photo]", str(hanks_path))
    page.set_input_files("#check input[name=photo]", str(hanks_path))
    page.click("#check button[type=submit]")
    expect(page.locator("#result")).to_contain_text("Same person")
    page.set_input_files("#check input[name=photo]", str(t1_path))
    page.click("#check button[type=submit]")
    expect(page.locator("#result")).to_contain_text("Not the same person")

    page.goto(url + "/alarms")
    page.click("#alarms button")
    expect(page.locator("#alarms tr[data-alarm]")).to_contain_text("clerk")
    assert Watch(db).alarms(open_only=True) == []
    page.goto(url + "/lang/zh-CN?back=/")
    expect(page.locator("header")).to_contain_text("名册")

    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = httpx.post(url + "/api/persons/R2/status", json={"status": "suspended"}, cookies=cookies)
    assert refused.status_code == 403  # no CSRF token
    assert httpx.get(url + "/accounts", cookies=cookies).status_code == 403  # an office clerk manages no accounts
    add_account(db, "boss", "admin", PASSWORD)
    admin = browser.new_page()
    admin.goto(url + "/login")
    admin.fill("input[name=name]", "boss")
    admin.fill("input[name=password]", PASSWORD)
    admin.click("#login")
    admin.wait_for_url(url + "/")
    admin.goto(url + "/accounts")
    admin.click("#accounts tr[data-account=clerk] button")
    expect(admin.locator("#accounts tr[data-account=clerk]")).to_contain_text("disabled")  # a new browser page: English
    page.goto(url + "/persons")
    page.wait_for_url(url + "/login")  # the clerk's session ended at once
    disable_account(db, "boss")
    admin.goto(url + "/")
    admin.wait_for_url(url + "/login")
    page.close()
    admin.close()
