"""The hub's admin page (FastAPI, server-rendered, zh-CN and en): the gate board, the register (add a person
from a photo, suspend, re-activate), a 1:1 check of a visitor's photo against an ID photo (score and
decision shown, nothing stored), events with filters, the hub's alarms with acknowledgement, the care
watch. Accounts are the hub's (`gate hub account add`, argon2, roles `admin` and `office`); sessions are
server-side with a CSRF token; the login form is guarded by a double-submit token and a rate limit.
Photos travel as JSON (base64) from the page's script: no multipart parser is needed."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from edge.hub.db import HubDatabase
from edge.hub.photos import templates_of
from edge.hub.queries import board, events
from edge.hub.register import Register, RegisterError, audit_row
from edge.hub.watch import Watch
from edge.records import ts_text
from edge.time_input import TimeInputError, optional_time, system_zone
from edge.web.auth import Session, Sessions, same_token, verify_password
from edge.web.login_guard import LoginLimiter, LoginTokens, posted_by_this_page

COOKIE = "hub_session"
LOGIN_COOKIE = "hub_login_csrf"
MAX_BODY = 8 * 1024 * 1024
Embed = Callable[[bytes], list[float]]  # a photo's embedding by the hub's face engine (ValueError: no usable face)

TEXT = {
    "en": {"title": "Community hub", "board": "Gates", "persons": "Register", "events": "Events", "alarms": "Alarms",
           "check": "1:1 check", "care": "Care watch", "login": "Sign in", "logout": "Sign out", "name": "Name",
           "password": "Password", "gate": "Gate", "available": "Available", "acked": "Version acked",
           "outbox": "Outbox", "last_event": "Last event", "id": "ID", "unit": "Unit", "kind": "Kind",
           "status": "Status", "add": "Add", "photo": "Photo", "suspend": "Suspend", "activate": "Re-activate",
           "ack": "Acknowledge", "score": "Score", "same": "Same person", "different": "Not the same person",
           "id_photo": "ID photo", "visitor_photo": "Visitor's photo", "when": "When", "person": "Person",
           "decision": "Decision", "details": "Details", "none": "Nothing here", "filter": "Filter",
           "version": "Register version", "bad_login": "Wrong name or password", "language": "中文",
           "resident": "resident", "visitor": "visitor", "staff": "staff", "overdue": "Not seen for",
           "group": "Group", "all": "all", "accounts": "Accounts", "role": "Role", "disable": "Disable",
           "disabled": "disabled"},
    "zh-CN": {"title": "社区中心", "board": "闸机", "persons": "名册", "events": "通行记录", "alarms": "告警",
              "check": "人证比对", "care": "关爱看护", "login": "登录", "logout": "退出", "name": "用户名",
              "password": "密码", "gate": "闸机", "available": "在线状态", "acked": "已确认版本", "outbox": "待上传",
              "last_event": "最近通行", "id": "编号", "unit": "房号", "kind": "类别", "status": "状态", "add": "添加",
              "photo": "照片", "suspend": "停用", "activate": "恢复", "ack": "确认", "score": "相似度",
              "same": "同一人", "different": "不是同一人", "id_photo": "证件照", "visitor_photo": "访客照片",
              "when": "时间", "person": "人员", "decision": "结果", "details": "详情", "none": "暂无",
              "filter": "筛选", "version": "名册版本", "bad_login": "用户名或密码错误", "language": "English",
              "resident": "住户", "visitor": "访客", "staff": "员工", "overdue": "未出现", "group": "楼栋/分组",
              "all": "全部", "accounts": "账号", "role": "角色", "disable": "停用", "disabled": "已停用"},
}


class HubWeb:
    def __init__(self, db: HubDatabase, embed: Embed | None, *, model_id: str = "sface_2021dec", threshold: float = 0.5,
                 language: str = "zh-CN", session_hours: float = 8.0, secure_cookies: bool = False,
                 keep_photo: Callable[[str, bytes], None] | None = None) -> None:
        self.db, self.embed, self.threshold, self.model_id = db, embed, threshold, model_id
        self.keep_photo = keep_photo  # [hub] keep_photos: where an uploaded photo goes (None: discarded)
        self.register, self.watch = Register(db), Watch(db)
        self.language, self.secure = language, secure_cookies
        self.sessions = Sessions(session_hours)
        self.limiter = LoginLimiter(20)
        self.login_tokens = LoginTokens()
        self.templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))

    # ------------------------------------------------------------------------------------ helpers

    def lang(self, request: Request) -> str:
        chosen = request.cookies.get("hub_lang") or self.language
        return chosen if chosen in TEXT else "en"

    def session(self, request: Request) -> Session | None:
        s = self.sessions.get(request.cookies.get(COOKIE))
        if s is None:
            return None
        row = self.db.one("SELECT role, disabled FROM accounts WHERE name = ?", (s.guard,))
        if row is None or row[1]:
            self.sessions.drop(s.token)  # disabled or deleted: the session ends at once
            return None
        return s

    def page(self, request: Request, name: str, s: Session | None, **ctx: Any) -> HTMLResponse:
        lang = self.lang(request)
        texts = TEXT[lang]
        return self.templates.TemplateResponse(request, name, {
            "t": lambda k: texts.get(k, k), "lang": lang, "session": s, "csrf": s.csrf if s else "",
            "open_alarms": len(self.watch.alarms(open_only=True)) if s else 0, **ctx})

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        with self.db.tx():
            audit_row(self.db, actor, action, details)


def create_hub_app(web: HubWeb) -> FastAPI:
    app = FastAPI(title="edge-gate hub", docs_url=None, redoc_url=None, openapi_url=None)

    def need(request: Request, write: bool = False, admin: bool = False) -> Session | Response:
        s = web.session(request)
        if s is None:
            return RedirectResponse("/login", 303) if request.method == "GET" else JSONResponse(
                {"error": "sign in first"}, 401)
        if write and not same_token(request.headers.get("x-csrf-token"), s.csrf):
            return JSONResponse({"error": "bad or missing CSRF token"}, 403)
        if admin and s.role != "admin":
            return JSONResponse({"error": "admins only"}, 403)
        return s

    async def body_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ValueError("request too large")
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        token = web.login_tokens.issue()
        resp = web.page(request, "hub_login.html", None, login_csrf=token, error=request.query_params.get("e"))
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=web.secure)
        return resp

    @app.post("/login")
    async def login(request: Request) -> Response:
        raw = await request.body()
        form = {k: v[0] for k, v in parse_qs(raw[:4096].decode("utf-8", "replace")).items()}
        if (not posted_by_this_page(request.headers, request.headers.get("host"))
                or not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE))
                or not web.login_tokens.redeem(form.get("csrf"))):
            return RedirectResponse("/login?e=1", 303)
        name, peer = form.get("name", "")[:64], request.client.host if request.client else "?"
        verdict = web.limiter.check(peer, name)
        if verdict.wait_s:
            return Response("too many attempts; wait and try again", 429, headers={"retry-after": str(verdict.wait_s)})
        try:
            row = web.db.one("SELECT role, password_hash, disabled FROM accounts WHERE name = ?", (name,))
            ok = verify_password(row[1] if row and not row[2] else None, form.get("password", ""))
        except BaseException:
            web.limiter.abandoned(peer, name)  # the database failed: no verdict, the reservation goes
            raise
        if not ok:
            web.limiter.failed(peer, name)
            return RedirectResponse("/login?e=1", 303)
        assert row is not None
        web.limiter.succeeded(peer, name)
        s = web.sessions.create(name, str(row[0]))
        web.audit(name, "login", {"from": peer})
        resp = RedirectResponse("/", 303)
        resp.set_cookie(COOKIE, s.token, httponly=True, samesite="strict", secure=web.secure)
        resp.delete_cookie(LOGIN_COOKIE)
        return resp

    @app.post("/logout")
    def logout(request: Request) -> Response:
        web.sessions.drop(request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/lang/{lang}")
    def set_lang(lang: str, request: Request) -> Response:
        resp = RedirectResponse(request.query_params.get("back", "/") if request.query_params.get(
            "back", "/").startswith("/") else "/", 303)
        resp.set_cookie("hub_lang", lang if lang in TEXT else "en", samesite="strict")
        return resp

    @app.get("/", response_class=HTMLResponse)
    def board_page(request: Request) -> Response:
        s = need(request)
        if not isinstance(s, Session):
            return s
        care = [a for a in web.watch.alarms(open_only=True) if a["kind"] == "care_watch"]
        return web.page(request, "hub_board.html", s, gates=board(web.db), version=web.register.version, care=care)

    @app.get("/persons", response_class=HTMLResponse)
    def persons_page(request: Request) -> Response:
        s = need(request)
        if not isinstance(s, Session):
            return s
        group = request.query_params.get("group") or None
        persons = [{**p, "groups": web.register.groups(p["id"])} for p in web.register.persons(group=group)]
        return web.page(request, "hub_persons.html", s, persons=persons, groups=web.register.groups(), group=group)

    @app.post("/api/persons")
    async def add_person(request: Request) -> Response:
        s = need(request, write=True)
        if not isinstance(s, Session):
            return s
        try:
            data = await body_json(request)
            entry = {k: data[k] for k in ("id", "name", "unit", "kind") if data.get(k)}
            photo = base64.b64decode(str(data["photo"]), validate=True) if data.get("photo") else None
            if photo is not None:
                if web.embed is None:
                    raise ValueError("this hub has no face engine")
                entry["templates"] = templates_of(web.embed(photo), web.model_id)
            version = web.register.upsert([entry], s.guard)
            if data.get("group"):
                web.register.set_groups(str(entry.get("id")), [str(data["group"])], s.guard)
            if photo is not None and web.keep_photo is not None:
                web.keep_photo(str(entry["id"]), photo)
        except (ValueError, binascii.Error, RegisterError) as exc:
            return JSONResponse({"error": " ".join(str(exc).split())}, 400)
        return JSONResponse({"version": version})

    @app.post("/api/persons/{person_id}/status")
    async def set_status(person_id: str, request: Request) -> Response:
        s = need(request, write=True)
        if not isinstance(s, Session):
            return s
        try:
            status = (await body_json(request)).get("status")
            version = web.register.patch(person_id, {"status": status}, s.guard)
        except (ValueError, RegisterError) as exc:
            return JSONResponse({"error": " ".join(str(exc).split())}, 400)
        return JSONResponse({"version": version})

    @app.get("/accounts", response_class=HTMLResponse)
    def accounts_page(request: Request) -> Response:
        s = need(request)
        if not isinstance(s, Session):
            return s
        if s.role != "admin":
            return HTMLResponse("admins only", 403)
        rows = web.db.rows("SELECT name, role, disabled, created_at FROM accounts ORDER BY name")
        return web.page(request, "hub_accounts.html", s, accounts=rows)

    @app.post("/api/accounts/{name}/disable")
    def disable(name: str, request: Request) -> Response:
        s = need(request, write=True, admin=True)
        if not isinstance(s, Session):
            return s
        if name == s.guard:
            return JSONResponse({"error": "you cannot disable your own account"}, 400)
        if not disable_account(web.db, name):
            return JSONResponse({"error": "no such account"}, 404)
        web.sessions.drop_guard(name)
        web.audit(s.guard, "account_disable", {"name": name})
        return JSONResponse({"ok": True})

    @app.get("/check", response_class=HTMLResponse)
    def check_page(request: Request) -> Response:
        s = need(request)
        return s if not isinstance(s, Session) else web.page(request, "hub_check.html", s)

    @app.post("/api/check")
    async def check(request: Request) -> Response:
        """1:1: a visitor's photo against an ID photo; the score and decision, nothing stored."""
        s = need(request, write=True)
        if not isinstance(s, Session):
            return s
        if web.embed is None:
            return JSONResponse({"error": "this hub has no face engine"}, 503)
        try:
            data = await body_json(request)
            a = web.embed(base64.b64decode(str(data.get("id_photo", "")), validate=True))
            b = web.embed(base64.b64decode(str(data.get("photo", "")), validate=True))
        except (ValueError, binascii.Error) as exc:
            return JSONResponse({"error": " ".join(str(exc).split())}, 400)
        score = _cosine(a, b)
        web.audit(s.guard, "check_1to1", {"score": round(score, 4)})
        return JSONResponse({"score": round(score, 4), "same": score >= web.threshold, "threshold": web.threshold})

    @app.get("/events", response_class=HTMLResponse)
    def events_page(request: Request) -> Response:
        s = need(request)
        if not isinstance(s, Session):
            return s
        q = request.query_params
        try:
            since = optional_time(q.get("since"), "since", system_zone())
        except TimeInputError:
            page = web.page(request, "hub_events.html", s, events=[], q=q, error="since")
            page.status_code = 422
            return page
        rows = events(web.db, gate=q.get("gate") or None, person=q.get("person") or None, since=since, limit=500)
        return web.page(request, "hub_events.html", s, events=rows[-500:][::-1], q=q, error=None)

    @app.get("/alarms", response_class=HTMLResponse)
    def alarms_page(request: Request) -> Response:
        s = need(request)
        return s if not isinstance(s, Session) else web.page(request, "hub_alarms.html", s,
                                                              alarms=web.watch.alarms()[::-1])

    @app.post("/api/alarms/{alarm_id}/ack")
    def ack(alarm_id: str, request: Request) -> Response:
        s = need(request, write=True)
        if not isinstance(s, Session):
            return s
        if not web.watch.acknowledge(alarm_id, s.guard):
            return JSONResponse({"error": "no open alarm with that id"}, 404)
        web.audit(s.guard, "alarm_ack", {"id": alarm_id})
        return JSONResponse({"ok": True})

    return app


def add_account(db: HubDatabase, name: str, role: str, password: str) -> None:
    """An account of the admin page (argon2; ValueError for a short password, a bad role or name)."""
    from edge.web.auth import hash_password

    if role not in ("admin", "office"):
        raise ValueError("role is admin or office")
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("an account name is 1-64 letters, digits, - _ .")
    hashed = hash_password(password)
    with db.tx():
        db.execute("DELETE FROM accounts WHERE name = ?", (name,))
        db.execute("INSERT INTO accounts (name, role, password_hash, disabled, created_at) VALUES (?, ?, ?, 0, ?)",
                   (name, role, hashed, ts_text(datetime.now(UTC))))


def disable_account(db: HubDatabase, name: str) -> bool:
    with db.tx():
        return db.execute("UPDATE accounts SET disabled = 1 WHERE name = ?", (name,)) == 1


def _cosine(a: list[float], b: list[float]) -> float:
    import numpy as np

    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(va)) * float(np.linalg.norm(vb))
    return float(va @ vb) / max(norms, 1e-12)
