"""What the page shows of events, alarms and health: translated, formatted, JSON-able view dicts
shared by the server-rendered templates and the live (SSE) updates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from edge.records import alarm_group_key, parse_ts
from edge.web.i18n import Translator

PARTS = ("camera", "thermal", "relay", "mqtt")


def local_time(ts: object, tz: tzinfo) -> str:
    when = ts
    if isinstance(ts, str):
        try:
            when = parse_ts(ts)
        except ValueError:
            return ts
    if isinstance(when, datetime):
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return ""


def temperature_text(temperature: object) -> str | None:
    if not isinstance(temperature, Mapping):
        return None
    value = temperature.get("body_c")
    if isinstance(value, int | float):
        return f"{value:.1f} °C"
    return None


def event_view(ev: Mapping[str, Any], name: str | None, t: Translator, tz: tzinfo) -> dict[str, Any]:
    """A decision as the page shows it: title, colour (grant/deny), translated reasons, temperature."""
    reasons = [r for r in ev.get("reasons") or [] if isinstance(r, Mapping)]
    codes = [str(r.get("code")) for r in reasons]
    if "manual_open" in codes:
        guard = next((r.get("params", {}).get("guard") for r in reasons if r.get("code") == "manual_open"), "?")
        title = t("decision.manual", guard=guard)
    elif ev.get("person_id"):
        title = f"{name or ev['person_id']} ({ev['person_id']})" if name else str(ev["person_id"])
    else:
        title = t("decision.unknown")
    decision = "grant" if ev.get("decision") == "grant" else "deny"
    latency = ev.get("latency_ms")
    if latency is None and isinstance(ev.get("scores"), Mapping):
        latency = ev["scores"].get("latency_ms")
    alarms = [a for a in ev.get("alarms") or [] if isinstance(a, Mapping)]
    return {
        "event_id": ev.get("event_id"), "decision": decision, "label": t(f"decision.{decision}"),
        "title": title, "person_id": ev.get("person_id"), "time": local_time(ev.get("ts"), tz),
        "reasons": [t.reason(r, tz) for r in reasons], "codes": codes,
        "temperature": temperature_text(ev.get("temperature")),
        "latency": t("status.latency", ms=round(float(latency))) if isinstance(latency, int | float) else None,
        "alarms": [t.alarm(str(a.get("kind"))) for a in alarms],
    }


def alarm_view(a: Mapping[str, Any], t: Translator, tz: tzinfo) -> dict[str, Any]:
    """An alarm (a group of repeats: `repeats` says "x37, last at ...") as the page shows it; `group` is
    its source, so the live page counts a repeat on the open row of the same source."""
    by = a.get("acknowledged_by")
    count = a.get("count")
    count = count if isinstance(count, int) and not isinstance(count, bool) and count > 1 else 1
    details = a.get("details")
    return {
        "id": a.get("id"), "kind": a.get("kind"), "kind_text": t.alarm(str(a.get("kind"))),
        "severity": a.get("severity"), "message": a.get("message"), "time": local_time(a.get("ts"), tz),
        "person_id": a.get("person_id"), "acknowledged_by": by,
        "acknowledged": t("alarms.acked_by", guard=by, at=local_time(a.get("acknowledged_at"), tz)) if by else None,
        "info": a.get("severity") == "info", "count": count,
        "repeats": t("alarms.repeats", count=count, at=local_time(a.get("last_seen") or a.get("ts"), tz))
        if count > 1 else None,
        "group": alarm_group_key(str(a.get("kind")), _text_or_none(a.get("gate_id")), _text_or_none(a.get("person_id")),
                                 details if isinstance(details, Mapping) else {}),
    }


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def health_view(h: Mapping[str, Any], has_sync: bool, sync_ok: bool | None, t: Translator) -> dict[str, Any]:
    """The status panel's figures, each already text, plus per-part ok/fault for the colours."""
    parts: dict[str, dict[str, Any]] = {}
    cam = h.get("camera") or {}
    parts["camera"] = {"ok": bool(cam.get("ok")), "text": t("health.ok") if cam.get("ok")
                       else f"{t('health.fault')}: {cam.get('error') or ''}".rstrip(": ")}
    thermal = h.get("thermal")
    if thermal is None:
        parts["thermal"] = {"ok": None, "text": t("health.off")}
    else:
        parts["thermal"] = {"ok": bool(thermal.get("ok")), "text": t("health.ok") if thermal.get("ok")
                            else f"{t('health.fault')}: {thermal.get('error') or ''}".rstrip(": ")}
    relay = h.get("relay") or {}
    parts["relay"] = {"ok": bool(relay.get("ok")), "text": t("health.ok") if relay.get("ok")
                      else f"{t('health.fault')}: {relay.get('error') or ''}".rstrip(": ")}
    if not has_sync:
        parts["mqtt"] = {"ok": None, "text": t("health.not_configured")}
    elif sync_ok is None:
        parts["mqtt"] = {"ok": None, "text": t("health.unknown")}
    else:
        parts["mqtt"] = {"ok": sync_ok, "text": t("health.ok") if sync_ok else t("health.fault")}
    panel = (h.get("health") or {}).get("panel")
    if panel is not None:  # panel mode: the access panel's link, what it shows on this reader (LED, buzzer) and
        text = str(panel.get("detail") or "")  # the malformed frames heard on its bus (PanelLink.snapshot)
        malformed = (h.get("panel") or {}).get("malformed_frames")
        if isinstance(malformed, int) and not isinstance(malformed, bool):
            text = "; ".join(x for x in (text, t("health.panel_malformed", count=malformed)) if x)
        parts["panel"] = {"ok": bool(panel.get("ok")), "text": text}
    for name in parts:
        parts[name]["name"] = t(f"part.{name}")
    wl = h.get("whitelist") or {}
    return {
        "parts": [parts[p] | {"key": p} for p in (*PARTS, "panel") if p in parts],
        "relay_state": t("status.relay_on") if relay.get("on") else t("status.relay_off"),
        "relay_on": bool(relay.get("on")), "pulses": relay.get("pulses", 0),
        "outbox": h.get("outbox_depth", 0),
        "whitelist": t("status.whitelist_value", version=wl.get("version") if wl.get("version") is not None else "—",
                       persons=wl.get("persons", 0)),
        "fps": f"{cam.get('fps', 0)} / {cam.get('skipped_fps', 0)}",
    }


def hold_view(io: Mapping[str, Any], t: Translator, tz: tzinfo) -> dict[str, Any]:
    """The status page's banner for the lane's I/O (`edge.safety` snapshot): a fire, a guard's hold-open
    (who, until when, why), the normally-open schedule; empty text when the gate is in normal operation."""
    held = io.get("hold_open")
    parts = [t("hold.fire")] if io.get("fire") else []
    if isinstance(held, Mapping):
        parts.append(t("hold.banner", guard=held.get("guard"), until=local_time(held.get("until"), tz),
                       reason=held.get("reason")))
    elif io.get("scheduled_open"):
        parts.append(t("hold.scheduled"))
    return {"text": " · ".join(parts), "fire": bool(io.get("fire")), "guard_hold": isinstance(held, Mapping)}
