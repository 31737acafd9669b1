"""Every string the guards' page shows, in Chinese (zh-CN) and English, and the language choice.

Keys are flat dotted names; `reason.<code>` and `alarm.<kind>` translate the policy's machine codes
(their `{param}` placeholders are filled from the reason's params; a missing one shows as "?").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

LANGUAGES = ("zh-CN", "en")
LANG_COOKIE = "gate_lang"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "app.title": "Gate {gate}",
        "nav.status": "Status", "nav.events": "Events", "nav.alarms": "Alarms", "nav.persons": "Persons",
        "nav.logout": "Log out", "nav.language": "中文",
        "role.viewer": "viewer", "role.operator": "operator",
        "login.title": "Guard login", "login.name": "Name", "login.password": "Password", "login.submit": "Log in",
        "login.failed": "Wrong name or password.",
        "login.too_many": "Too many login attempts. Try again in {seconds} s.",
        "login.expired": "Your session has expired; please log in again.",
        "csrf.failed": "The form was stale or forged (CSRF check failed). Reload the page and try again.",
        "status.title": "Status", "status.preview": "Camera", "status.last": "Last decision",
        "status.none": "No decision yet.", "status.recent": "Recent decisions",
        "status.temperature": "Temperature", "status.relay": "Relay", "status.relay_on": "open",
        "status.relay_off": "closed", "status.pulses": "pulses", "status.health": "Health",
        "status.outbox": "Outbox (waiting for the server)", "status.whitelist": "Whitelist",
        "status.whitelist_value": "version {version}, {persons} persons",
        "status.fps": "Camera fps / skipped fps", "status.latency": "{ms} ms",
        "part.camera": "Camera", "part.thermal": "Thermal sensor", "part.relay": "Relay", "part.mqtt": "MQTT",
        "part.panel": "Access panel", "health.panel_malformed": "{count} malformed frames",
        "health.ok": "OK", "health.fault": "FAULT", "health.not_configured": "not configured",
        "health.unknown": "unknown", "health.off": "temperature screening off",
        "decision.grant": "GRANTED", "decision.deny": "DENIED",
        "decision.unknown": "Unknown face", "decision.manual": "Manual open by {guard}",
        "open.title": "Open the gate by hand", "open.reason": "Reason (required)", "open.submit": "Open",
        "open.done": "Gate opened; recorded.", "open.need_reason": "A reason is required.",
        "open.forbidden": "Only operators may open the gate.", "open.relay_failed": "The relay failed: {error}",
        "hold.title": "Hold the gate open", "hold.reason": "Reason (required)", "hold.minutes": "Minutes",
        "hold.submit": "Hold open", "hold.release": "Release now", "hold.done": "Held open; recorded.",
        "hold.banner": "HELD OPEN by {guard} until {until}: {reason}",
        "hold.scheduled": "HELD OPEN by the normally-open schedule",
        "hold.fire": "FIRE: the turnstile is held released", "reason.exit_button": "Exit button",
        "alarm.fire_release": "Fire: turnstile released", "alarm.fire_release_recovered": "Fire input cleared",
        "alarm.fire_line_fault": "Fire line cut or shorted", "alarm.fire_line_recovered": "Fire line sound again",
        "events.title": "Events", "events.since": "From",
        "events.bad_time": "“{field}” must be a date and time between 1970-01-01 and 2999-12-31.",
        "events.until": "Until", "events.person": "Person id",
        "events.decision": "Decision", "events.any": "any", "events.filter": "Filter", "events.time": "Time",
        "events.who": "Who", "events.reasons": "Reasons", "events.none": "No events match.",
        "events.newer": "Newer", "events.older": "Older", "events.page": "Page {page}",
        "event.title": "Event {id}", "event.temperature": "Temperature inputs", "event.scores": "Scores",
        "event.alarms": "Alarms", "event.crop": "Face crop", "event.no_crop": "No face crop kept.",
        "event.not_found": "No such event.",
        "alarms.title": "Alarms", "alarms.unacked": "Unacknowledged only", "alarms.kind": "Kind",
        "alarms.message": "Message", "alarms.ack": "Acknowledge", "alarms.acked_by": "Acknowledged by {guard} at {at}",
        "alarms.none": "No alarms.", "alarms.banner": "{count} unacknowledged alarm(s)",
        "alarms.sound": "Click anywhere to enable the alarm sound", "alarms.show": "Show",
        "alarms.repeats": "×{count}, last at {at}",
        "persons.title": "Persons", "persons.search": "Search id, name or unit", "persons.id": "Id",
        "persons.name": "Name", "persons.kind": "Kind", "persons.status": "Status", "persons.unit": "Unit",
        "persons.valid": "Valid", "persons.uses": "Uses", "persons.none": "Nobody matches.",
        "persons.search_button": "Search",
        "kind.resident": "resident", "kind.visitor": "visitor", "kind.staff": "staff",
        "docs.title": "JSON API", "docs.intro": "What the page offers to programs; the same in machine form:",
        "docs.login": "needs a guard's session", "docs.param": "Parameter", "docs.in": "In", "docs.type": "Type",
        "docs.required": "Required", "docs.body": "Body: JSON (see /openapi.json).",
        "common.yes": "yes", "common.no": "no", "common.back": "Back", "common.error": "Error",
        "reason.ok": "All checks passed",
        "reason.unknown_face": "Unknown face (score {score})",
        "reason.not_enrolled": "Not on the whitelist",
        "reason.invalid_input": "Invalid input: {what}",
        "reason.spoof_suspected": "Not a live face (photo or screen?)",
        "reason.liveness_unavailable": "Liveness check unavailable",
        "reason.suspended": "Access suspended", "reason.blocked": "Blocked person",
        "reason.not_yet_valid": "Pass not valid yet (from {valid_from})",
        "reason.expired": "Pass expired ({valid_until})",
        "reason.uses_exhausted": "No uses left ({uses}/{max_uses})",
        "reason.gate_not_allowed": "Not allowed at this gate",
        "reason.direction_not_allowed": "Not allowed in this direction ({direction})",
        "reason.outside_schedule": "Outside the allowed hours ({local_time})",
        "reason.anti_passback": "Already passed recently (anti-passback)",
        "reason.sensor_fault": "Thermal sensor fault ({fault})",
        "reason.stale_temperature": "Temperature reading too old ({age_s} s)",
        "reason.fever": "Fever {value_c} °C (limit {fever_c} °C)",
        "reason.fever_unconfirmed": "High temperature {value_c} °C, re-checking",
        "reason.manual_open": "Opened by hand by {guard}: {reason}",
        "alarm.stranger": "Stranger", "alarm.fever": "Fever", "alarm.spoof": "Spoof attempt",
        "alarm.blocked_person": "Blocked person", "alarm.sensor_fault": "Sensor fault",
        "alarm.camera_fault": "Camera fault", "alarm.relay_fault": "Relay fault",
        "alarm.vision_fault": "Vision fault", "alarm.passage_without_grant": "Passage without grant",
        "alarm.granted_not_passed": "Granted, not passed", "alarm.care_watch": "Care watch",
        "alarm.camera_recovered": "Camera recovered", "alarm.thermal_recovered": "Sensor recovered",
        "alarm.relay_recovered": "Relay recovered", "alarm.web_fault": "Web page fault",
        "alarm.login_lockout": "Login locked out",
        "alarm.whitelist_rejected": "Whitelist push refused", "alarm.forged_message": "Forged message refused",
        "alarm.intake_shed": "Messages dropped (flood)", "alarm.ha_button_refused": "Home Assistant open refused",
        "alarm.panel_offline": "Access panel offline", "alarm.panel_recovered": "Access panel back",
        "alarm.web_recovered": "Web page recovered",
        "alarm.store_fault": "Store refuses writes (disk full?)", "alarm.store_recovered": "Store recovered",
        "alarm.mqtt_fault": "Server link lost (events wait on the gate)", "alarm.mqtt_recovered": "Server link back",
        "alarm.door_forced": "Door opened without a grant", "alarm.door_held": "Door held open",
        "alarm.vision_recovered": "Vision recovered",
    },
    "zh-CN": {
        "app.title": "门禁 {gate}",
        "nav.status": "状态", "nav.events": "通行记录", "nav.alarms": "报警", "nav.persons": "人员",
        "nav.logout": "退出登录", "nav.language": "English",
        "role.viewer": "查看员", "role.operator": "操作员",
        "login.title": "保安登录", "login.name": "用户名", "login.password": "密码", "login.submit": "登录",
        "login.failed": "用户名或密码错误。",
        "login.too_many": "登录尝试过多，请 {seconds} 秒后再试。",
        "login.expired": "登录已过期，请重新登录。",
        "csrf.failed": "表单已过期或被伪造（CSRF 校验失败），请刷新页面后重试。",
        "status.title": "状态", "status.preview": "摄像头", "status.last": "最近一次判定",
        "status.none": "暂无判定。", "status.recent": "最近判定",
        "status.temperature": "体温", "status.relay": "继电器", "status.relay_on": "开启",
        "status.relay_off": "关闭", "status.pulses": "次开闸", "status.health": "设备状态",
        "status.outbox": "待上传（等待服务器）", "status.whitelist": "白名单",
        "status.whitelist_value": "版本 {version}，{persons} 人",
        "status.fps": "摄像头帧率 / 丢帧率", "status.latency": "{ms} 毫秒",
        "part.camera": "摄像头", "part.thermal": "测温传感器", "part.relay": "继电器", "part.mqtt": "MQTT",
        "part.panel": "门禁控制器", "health.panel_malformed": "{count} 个错误帧",
        "health.ok": "正常", "health.fault": "故障", "health.not_configured": "未配置",
        "health.unknown": "未知", "health.off": "未启用测温",
        "decision.grant": "允许通行", "decision.deny": "拒绝通行",
        "decision.unknown": "陌生人", "decision.manual": "{guard} 手动开闸",
        "open.title": "手动开闸", "open.reason": "原因（必填）", "open.submit": "开闸",
        "open.done": "已开闸并记录。", "open.need_reason": "必须填写原因。",
        "open.forbidden": "只有操作员可以开闸。", "open.relay_failed": "继电器故障：{error}",
        "hold.title": "保持常开", "hold.reason": "原因（必填）", "hold.minutes": "分钟",
        "hold.submit": "保持常开", "hold.release": "立即恢复", "hold.done": "已保持常开并记录。",
        "hold.banner": "常开中：{guard} 设置，至 {until}：{reason}",
        "hold.scheduled": "常开中：按常开时段",
        "hold.fire": "火警：闸机保持释放", "reason.exit_button": "出门按钮",
        "alarm.fire_release": "火警：闸机已释放", "alarm.fire_release_recovered": "火警输入已解除",
        "alarm.fire_line_fault": "火警线路断路或短路", "alarm.fire_line_recovered": "火警线路已恢复",
        "events.title": "通行记录", "events.since": "开始时间",
        "events.bad_time": "“{field}”须为 1970-01-01 至 2999-12-31 之间的日期时间。", "events.until": "结束时间",
        "events.person": "人员编号", "events.decision": "判定", "events.any": "全部", "events.filter": "筛选",
        "events.time": "时间", "events.who": "人员", "events.reasons": "原因", "events.none": "没有符合条件的记录。",
        "events.newer": "较新", "events.older": "较早", "events.page": "第 {page} 页",
        "event.title": "记录 {id}", "event.temperature": "测温数据", "event.scores": "识别分数",
        "event.alarms": "报警", "event.crop": "人脸截图", "event.no_crop": "未保存人脸截图。",
        "event.not_found": "没有这条记录。",
        "alarms.title": "报警", "alarms.unacked": "仅未确认", "alarms.kind": "类型",
        "alarms.message": "内容", "alarms.ack": "确认", "alarms.acked_by": "已由 {guard} 于 {at} 确认",
        "alarms.none": "没有报警。", "alarms.banner": "{count} 条报警未确认",
        "alarms.sound": "点击页面任意处以启用报警声音", "alarms.show": "查看",
        "alarms.repeats": "×{count}，最近一次 {at}",
        "persons.title": "人员", "persons.search": "搜索编号、姓名或房号", "persons.id": "编号",
        "persons.name": "姓名", "persons.kind": "类别", "persons.status": "状态", "persons.unit": "房号",
        "persons.valid": "有效期", "persons.uses": "使用次数", "persons.none": "没有匹配的人员。",
        "persons.search_button": "搜索",
        "kind.resident": "住户", "kind.visitor": "访客", "kind.staff": "工作人员",
        "docs.title": "JSON 接口", "docs.intro": "本页面向程序提供的接口；机器可读版本：",
        "docs.login": "需要值班人员登录", "docs.param": "参数", "docs.in": "位置", "docs.type": "类型",
        "docs.required": "必填", "docs.body": "请求体：JSON（见 /openapi.json）。",
        "common.yes": "是", "common.no": "否", "common.back": "返回", "common.error": "错误",
        "reason.ok": "全部检查通过",
        "reason.unknown_face": "陌生面孔（相似度 {score}）",
        "reason.not_enrolled": "不在白名单中",
        "reason.invalid_input": "输入无效：{what}",
        "reason.spoof_suspected": "非活体（照片或屏幕？）",
        "reason.liveness_unavailable": "活体检测不可用",
        "reason.suspended": "通行权限已暂停", "reason.blocked": "禁止通行人员",
        "reason.not_yet_valid": "通行证尚未生效（自 {valid_from}）",
        "reason.expired": "通行证已过期（{valid_until}）",
        "reason.uses_exhausted": "使用次数已用完（{uses}/{max_uses}）",
        "reason.gate_not_allowed": "无权通过此门",
        "reason.direction_not_allowed": "不允许此方向通行（{direction}）",
        "reason.outside_schedule": "不在允许的时段内（{local_time}）",
        "reason.anti_passback": "刚刚已通过（防回传）",
        "reason.sensor_fault": "测温传感器故障（{fault}）",
        "reason.stale_temperature": "体温读数过旧（{age_s} 秒）",
        "reason.fever": "发热 {value_c} °C（阈值 {fever_c} °C）",
        "reason.fever_unconfirmed": "体温偏高 {value_c} °C，正在复测",
        "reason.manual_open": "{guard} 手动开闸：{reason}",
        "alarm.stranger": "陌生人", "alarm.fever": "发热", "alarm.spoof": "疑似假脸攻击",
        "alarm.blocked_person": "禁止通行人员", "alarm.sensor_fault": "传感器故障",
        "alarm.camera_fault": "摄像头故障", "alarm.relay_fault": "继电器故障",
        "alarm.vision_fault": "识别程序故障", "alarm.passage_without_grant": "未授权通行",
        "alarm.granted_not_passed": "已放行未通过", "alarm.care_watch": "关爱提醒",
        "alarm.camera_recovered": "摄像头已恢复", "alarm.thermal_recovered": "传感器已恢复",
        "alarm.relay_recovered": "继电器已恢复", "alarm.web_fault": "网页服务故障",
        "alarm.login_lockout": "登录已锁定",
        "alarm.whitelist_rejected": "名单推送被拒绝", "alarm.forged_message": "伪造消息已拒绝",
        "alarm.intake_shed": "消息过多已丢弃", "alarm.ha_button_refused": "Home Assistant 开门被拒绝",
        "alarm.panel_offline": "门禁控制器离线", "alarm.panel_recovered": "门禁控制器已恢复",
        "alarm.web_recovered": "网页服务已恢复",
        "alarm.store_fault": "数据库无法写入（磁盘已满？）", "alarm.store_recovered": "数据库已恢复",
        "alarm.mqtt_fault": "与服务器的连接中断（记录暂存于闸机）", "alarm.mqtt_recovered": "与服务器的连接已恢复",
        "alarm.door_forced": "未授权开门", "alarm.door_held": "门长时间未关",
        "alarm.vision_recovered": "识别程序已恢复",
    },
}


class _Params(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "?"


class Translator:
    """`t(key, **params)` in one language; unknown keys show as the key itself (and are caught by a test)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in STRINGS else "en"
        self._strings = STRINGS[self.lang]

    def __call__(self, key: str, **params: object) -> str:
        text = self._strings.get(key, key)
        return text.format_map(_Params(params)) if params or "{" in text else text

    def reason(self, reason: Mapping[str, object], tz: tzinfo = UTC) -> str:
        code = str(reason.get("code", "?"))
        raw = reason.get("params")
        params = dict(raw) if isinstance(raw, Mapping) else {}
        key = f"reason.{code}"
        if key not in self._strings:
            return code.replace("_", " ")
        return self(key, **{k: _short(v, tz) for k, v in params.items()})

    def alarm(self, kind: str) -> str:
        key = f"alarm.{kind}"
        return self(key) if key in self._strings else kind.replace("_", " ")


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _short(value: object, tz: tzinfo) -> object:
    """Numbers to two decimals at most, timestamps to local minutes."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, str) and _ISO.match(value):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return (when.astimezone(tz) if when.tzinfo else when).strftime("%Y-%m-%d %H:%M")
    return value


def pick_language(cookie: str | None, accept_language: str | None, default: str) -> str:
    """The guard's cookie first, then the browser's Accept-Language (by q-value), then the default."""
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang is not None and q > 0 and (best is None or q > best[0]):
            best = (q, lang)
    return best[1] if best else default
