"""Every visible string exists in both languages, every machine code the gate emits is translated, the
language choice follows the guard then the browser; and the `gate guard` commands manage accounts."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import edge
from edge.cli import main as gate_main
from edge.config.lane import LaneConfig
from edge.records import ALARM_KINDS, KINDS
from edge.store import Store
from edge.web.auth import Sessions, hash_password, verify_password
from edge.web.i18n import STRINGS, Translator, pick_language
from edge.web.login_guard import LoginLimiter

EDGE = Path(edge.__file__).resolve().parent


def test_every_key_in_both_languages() -> None:
    assert set(STRINGS["en"]) == set(STRINGS["zh-CN"])
    for key, text in STRINGS["en"].items():  # the same placeholders in both
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", STRINGS["zh-CN"][key])), key
    assert any(re.search(r"[\u4e00-\u9fff]", v) for v in STRINGS["zh-CN"].values())


def test_templates_and_codes_are_translated() -> None:
    used = set()
    for path in (EDGE / "web" / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text()))
    for path in (EDGE / "web").glob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text()))
    dynamic = {k for k in used if k.endswith(".")}  # t("kind." + p.kind), t("role." + session.role)
    assert dynamic == {"kind.", "role."}
    used |= {f"kind.{k}" for k in KINDS} | {"role.viewer", "role.operator"}
    assert len(used) > 60 and used - dynamic - set(STRINGS["en"]) == set()
    policy = (EDGE / "policy.py").read_text()
    codes = set(re.findall(r'Reason\("(\w+)"', policy)) | set(re.findall(r'_fault\(cfg, "(\w+)"', policy))
    assert {"fever", "unknown_face", "expired", "manual_open", "anti_passback"} <= codes
    assert {f"reason.{c}" for c in codes} - set(STRINGS["en"]) == set()
    kinds = set(re.findall(r'Alarm\("(\w+)"', policy))
    for module in ("lane.py", "gate.py"):
        kinds |= set(re.findall(r'kind="(\w+)"', (EDGE / module).read_text()))
    kinds |= {"camera_fault", "sensor_fault", "relay_fault", "camera_recovered", "thermal_recovered",
              "relay_recovered", "care_watch"}
    assert {"stranger", "passage_without_grant", "granted_not_passed"} <= kinds
    assert {f"alarm.{k}" for k in kinds} - set(STRINGS["en"]) == set()


def test_translator_fills_params() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    fever = {"code": "fever", "params": {"value_c": 38.6, "fever_c": 37.3}}
    assert en.reason(fever) == "Fever 38.6 °C (limit 37.3 °C)"
    assert zh.reason(fever) == "发热 38.6 °C（阈值 37.3 °C）"
    assert en.reason({"code": "expired", "params": {}}) == "Pass expired (?)"
    expired = {"code": "expired", "params": {"valid_until": "2026-11-22T21:23:44.598830Z"}}
    assert en.reason(expired) == "Pass expired (2026-11-22 21:23)"
    assert en.reason({"code": "brand_new_code"}) == "brand new code"


@pytest.mark.parametrize(("cookie", "accept", "want"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR, en;q=0.5, zh;q=0.7", "zh-CN"), (None, "de", "en"), (None, None, "en"),
    ("zh-CN", "en", "zh-CN"), ("xx", "zh-TW", "zh-CN"),
])
def test_pick_language(cookie: str | None, accept: str | None, want: str) -> None:
    assert pick_language(cookie, accept, "en") == want


def test_passwords_sessions_and_limiter() -> None:
    with pytest.raises(ValueError, match="10"):
        hash_password("short")
    h = hash_password("a long enough secret")
    assert h.startswith("$argon2") and verify_password(h, "a long enough secret")
    assert not verify_password(h, "a long enough secreT") and not verify_password(None, "x" * 12)
    sessions = Sessions(hours=1)
    s = sessions.create("li", "operator")
    assert sessions.get(s.token) is s and s.csrf != s.token and len(s.token) >= 40
    sessions.drop_guard("li")
    assert sessions.get(s.token) is None
    s2 = sessions.create("wang", "operator")
    sessions.check_all(lambda name: None)  # the guard is gone from the table
    assert s2.ended == "disabled" and sessions.get(s2.token) is None and sessions.checks == 1


def test_every_alarm_kind_has_a_label_in_both_languages_and_the_siren_takes_only_those() -> None:
    for lang, table in STRINGS.items():
        missing = sorted(k for k in ALARM_KINDS if f"alarm.{k}" not in table)
        assert not missing, (lang, missing)
    assert "fire_release" in ALARM_KINDS and "panel_recovered" in ALARM_KINDS
    LaneConfig(siren_alarms=("stranger", "fire_release"))
    with pytest.raises(ValidationError, match=r"unknown alarm kind.*fevr"):
        LaneConfig(siren_alarms=("fevr",))


def test_login_limiter_backs_off_per_address_and_name() -> None:
    limiter = LoginLimiter(4, free_failures=2, global_per_minute=6)
    assert limiter.check("a", "li").wait_s == 0
    assert [limiter.failed("a", "li") for _ in range(2)] == [False, False]  # free failures
    assert limiter.check("a", "Li").wait_s == 0
    assert limiter.failed("a", "LI") is True  # the third locks the pair (names compare case-blind): one alarm
    v = limiter.check("a", "li")
    assert v.wait_s == 1 and v.why == "pair"
    assert limiter.check("b", "li").wait_s == 0  # the real guard elsewhere is not held back
    assert limiter.failed("a", "li") is False  # still locked: no second alarm within the minute
    assert limiter.check("a", "li").wait_s == 2  # 1 s, 2 s, 4 s ...
    limiter.failed("c", "x1")
    limiter.failed("c", "x2")  # 6 failures in all: the global ceiling
    assert limiter.check("c", "x3").why == "global"  # c failed too: it waits for the minute
    assert limiter.check("d", "li").wait_s == 0  # an address with no failure of its own still may try
    limiter.succeeded("a", "li")
    assert limiter.check("a", "li").why == "address"  # the pair is cleared; a's 4 failures this minute are not


def _gate_cmd(argv: list[str]) -> int:
    return gate_main(argv)  # the installed `gate` command's entry point


def test_guard_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert _gate_cmd(["guard", "add", "li", "--role", "operator", "--password-stdin", *data]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a very long secret\n"))
    assert _gate_cmd(["guard", "add", "li", "--role", "operator", "--password-stdin", *data]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another long secret\n"))
    assert _gate_cmd(["guard", "add", "li", "--role", "viewer", "--password-stdin", *data]) == 1  # exists
    with pytest.raises(SystemExit):
        _gate_cmd(["guard", "add", "wang", "--role", "admin", "--password-stdin", *data])
    assert _gate_cmd(["guard", "disable", "li", *data]) == 0
    assert _gate_cmd(["guard", "disable", "nobody", *data]) == 1
    capsys.readouterr()
    assert _gate_cmd(["guard", "list", *data]) == 0
    assert capsys.readouterr().out.split("\t")[:3] == ["li", "operator", "disabled"]
    with Store.open(tmp_path / "gate.db") as store:
        g = store.get_guard("li")
        assert g is not None and g.disabled and verify_password(g.password_hash, "a very long secret")
        assert "a very long secret" not in g.password_hash
        assert [a.action for a in store.audit_entries(limit=10)] == ["guard_disable", "guard_add"]
