"""The guards' status page in panel mode: the access panel is a health row (its link's state, the LED colour
and buzzer the panel shows on this reader, as PanelLink.supervise words them, and the malformed frames
counted on its bus), in both languages; a gate without a panel has no such row."""

from __future__ import annotations

from edge.web.i18n import Translator
from edge.web.views import health_view


def _health(panel: dict[str, object] | None) -> dict[str, object]:
    parts = {"camera": {"ok": True, "detail": "ok"}} | ({"panel": panel} if panel is not None else {})
    return {"camera": {"ok": True, "fps": 10.0, "skipped_fps": 0.0}, "relay": {"ok": True, "on": False, "pulses": 0},
            "outbox_depth": 0, "whitelist": {"version": 3, "persons": 2}, "health": parts}


def test_the_panel_row_shows_the_link_and_the_readers_led() -> None:
    online = health_view(_health({"ok": True, "detail": "ok; led green, buzzer off"}), False, None, Translator("en"))
    rows = {p["key"]: p for p in online["parts"]}
    assert rows["panel"] == {"key": "panel", "name": "Access panel", "ok": True, "text": "ok; led green, buzzer off"}
    assert [p["key"] for p in online["parts"]][-1] == "panel"
    offline = health_view(_health({"ok": False, "detail": "not polled for 4.0 s; fallback = deny; led off, "
                                   "buzzer off"}), False, None, Translator("zh-CN"))
    row = {p["key"]: p for p in offline["parts"]}["panel"]
    assert row["ok"] is False and row["name"] == "门禁控制器" and "not polled" in row["text"]


def test_the_panel_row_counts_malformed_frames() -> None:
    health = _health({"ok": True, "detail": "ok; led off, buzzer off"}) | {"panel": {"malformed_frames": 5}}
    en = {p["key"]: p for p in health_view(health, False, None, Translator("en"))["parts"]}["panel"]
    assert en["text"] == "ok; led off, buzzer off; 5 malformed frames"
    zh = {p["key"]: p for p in health_view(health, False, None, Translator("zh-CN"))["parts"]}["panel"]
    assert zh["text"] == "ok; led off, buzzer off; 5 个错误帧"


def test_no_panel_no_row() -> None:
    view = health_view(_health(None), False, None, Translator("en"))
    assert [p["key"] for p in view["parts"]] == ["camera", "thermal", "relay", "mqtt"]
