"""Home Assistant MQTT discovery, the pure part: the topics (`HaTopics`), the retained discovery configs
of one gate's device and entities (`discovery_configs`), and the small plain-text state messages of the
`{prefix}/{community}/{gate}/ha/...` topics those configs name, made from the gate's decisions and
alarms (`state_updates`). No paho, no I/O: `edge.sync.ha_bridge` publishes what these return.

The schema is Home Assistant's (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
`{discovery_prefix}/{component}/{node_id}/{object_id}/config`, each config with `unique_id`, `device`
(`identifiers`, `name`, `manufacturer`, `model`, `sw_version`), `origin`, `availability` and the
component's own keys. Configs name only topics the gate publishes: its `available` and signed `state`
topics (read with a value template), and the `ha/...` topics (never face data, templates or scores).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.protocol.topics import Topics

JsonDict = dict[str, Any]
_NOT_NODE = re.compile(r"[^A-Za-z0-9_-]")
# alarm kind -> the binary sensor it switches on / off (the fire input's release raises `fire_release`;
# its end is `fire_release_recovered`, or `fire_release_ended`)
ALARM_ON: dict[str, str] = {"stranger": "stranger", "fever": "fever", "fire_release": "fire"}
ALARM_OFF: dict[str, str] = {"fire_release_recovered": "fire", "fire_release_ended": "fire"}
MOMENTARY = ("stranger", "fever")  # on for `alarm_hold_s` (Home Assistant's off_delay), never retained on
ON, OFF = "ON", "OFF"
ONLINE_TEMPLATE = "{{ 'online' if value == 'online' else 'offline' }}"  # `stopped` is not available either
MAX_NAME_CHARS = 200


def slug(text: str) -> str:
    """A Home Assistant node or object id: [A-Za-z0-9_-] only."""
    return _NOT_NODE.sub("_", text)


@dataclass(frozen=True)
class HaTopics:
    """The topics of one gate's Home Assistant side."""

    topics: Topics
    discovery_prefix: str = "homeassistant"

    @property
    def node_id(self) -> str:
        return slug(f"{self.topics.community}_{self.topics.gate}")

    @property
    def status(self) -> str:
        """Home Assistant's birth and last-will messages (`online` / `offline`)."""
        return f"{self.discovery_prefix}/status"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{object_id}/config"

    @property
    def base(self) -> str:
        return f"{self.topics.base}/ha"

    @property
    def decision(self) -> str:
        return f"{self.base}/decision"

    @property
    def decision_attributes(self) -> str:
        return f"{self.base}/decision/attributes"

    @property
    def temperature(self) -> str:
        return f"{self.base}/temperature"

    def alarm(self, name: str) -> str:
        return f"{self.base}/alarm/{name}"

    @property
    def press(self) -> str:
        """Where Home Assistant's open button publishes its press (the shared secret)."""
        return f"{self.base}/open/press"

    def state_topics(self) -> list[str]:
        """Every retained `ha/...` state topic the gate publishes (what `gate ha purge` clears)."""
        return [self.decision, self.decision_attributes, self.temperature,
                *(self.alarm(n) for n in sorted(set(ALARM_ON.values())))]

    def config_topics(self) -> list[str]:
        """Every discovery config topic, the button's included (what `gate ha purge` empties)."""
        return [self.config(component, object_id) for component, object_id, _ in _ENTITIES] + \
            [self.config("button", "open")]


# (component, object_id, the entity's own keys); state topics are filled in by discovery_configs
_ENTITIES: tuple[tuple[str, str, JsonDict], ...] = (
    ("binary_sensor", "online", {"name": "Online", "device_class": "connectivity", "entity_category": "diagnostic",
                                 "value_template": "{{ 'ON' if value == 'online' else 'OFF' }}"}),
    ("sensor", "last_decision", {"name": "Last decision", "icon": "mdi:account-check"}),
    ("sensor", "body_temperature", {"name": "Body temperature", "device_class": "temperature",
                                    "unit_of_measurement": "°C", "state_class": "measurement",
                                    "suggested_display_precision": 1}),
    ("binary_sensor", "stranger", {"name": "Stranger", "device_class": "safety"}),
    ("binary_sensor", "fever", {"name": "Fever", "device_class": "problem"}),
    ("binary_sensor", "fire", {"name": "Fire release", "device_class": "safety"}),
    ("sensor", "outbox_depth", {"name": "Outbox depth", "state_class": "measurement", "icon": "mdi:tray-full",
                                "entity_category": "diagnostic",
                                "value_template": "{{ value_json.sync.outbox_depth }}"}),
    ("sensor", "whitelist_version", {"name": "Whitelist version", "icon": "mdi:account-multiple",
                                     "entity_category": "diagnostic",
                                     "value_template": "{{ value_json.whitelist.version }}"}),
)


def device(names: HaTopics) -> JsonDict:
    gate = names.topics.gate
    return {"identifiers": [f"edge-gate_{names.node_id}"], "name": f"Gate {gate}", "manufacturer": "edge-gate",
            "model": "edge-gate smart gate", "sw_version": __version__}


def discovery_configs(names: HaTopics, *, alarm_hold_s: int, button_secret: str | None) -> dict[str, str]:
    """Topic -> retained config payload (JSON text) for every entity of the gate's device. The button's
    topic maps to "" (an empty retained config removes it) unless `button_secret` is given."""
    t = names.topics
    availability = [{"topic": t.available, "payload_available": "online", "payload_not_available": "offline",
                     "value_template": ONLINE_TEMPLATE}]
    state_topic = {"online": t.available, "last_decision": names.decision, "body_temperature": names.temperature,
                   "outbox_depth": t.state, "whitelist_version": t.state}
    common = {"device": device(names), "origin": {"name": "edge-gate", "sw_version": __version__}, "qos": 1}
    out: dict[str, str] = {}
    for component, object_id, own in _ENTITIES:
        cfg: JsonDict = {**own, **common, "unique_id": f"edge-gate_{names.node_id}_{object_id}",
                         "state_topic": state_topic.get(object_id) or names.alarm(object_id)}
        if object_id != "online":  # the connectivity sensor is what shows the gate offline
            cfg["availability"] = availability
        if object_id == "last_decision":
            cfg["json_attributes_topic"] = names.decision_attributes
        if object_id in MOMENTARY:
            cfg["off_delay"] = alarm_hold_s
        out[names.config(component, object_id)] = json.dumps(cfg, ensure_ascii=False, sort_keys=True)
    button = names.config("button", "open")
    if button_secret is None:
        out[button] = ""
    else:
        out[button] = json.dumps({
            "name": "Open", "icon": "mdi:gate-open", **common, "availability": availability,
            "unique_id": f"edge-gate_{names.node_id}_open",
            "command_topic": names.press, "payload_press": button_secret, "retain": False,
        }, ensure_ascii=False, sort_keys=True)
    return out


def initial_states() -> dict[str, str]:
    """object -> state before anything happened (published retained on each connect)."""
    return {name: OFF for name in sorted(set(ALARM_ON.values()))}


@dataclass(frozen=True)
class StateUpdate:
    topic: str
    payload: str
    retain: bool


def state_updates(names: HaTopics, kind: str, payload: JsonDict, *, share_names: bool) -> list[StateUpdate]:
    """What the `ha/...` topics say after the gate published this ("decision" or "alarm", as
    `Gate.subscribe` hands them). Bad or unknown input gives no update, never an exception."""
    if kind == "alarm":
        alarm_kind = payload.get("kind")
        if not isinstance(alarm_kind, str):
            return []
        if alarm_kind in ALARM_ON:
            name = ALARM_ON[alarm_kind]
            return [StateUpdate(names.alarm(name), ON, name not in MOMENTARY)]
        if alarm_kind in ALARM_OFF:
            return [StateUpdate(names.alarm(ALARM_OFF[alarm_kind]), OFF, True)]
        return []
    if kind != "decision" or payload.get("decision") not in ("grant", "deny"):
        return []
    decision = str(payload["decision"])
    reasons = payload.get("reasons")
    codes = [str(r.get("code"))[:64] for r in reasons if isinstance(r, dict)] if isinstance(reasons, list) else []
    attributes: JsonDict = {"decision": decision, "ts": str(payload.get("ts", ""))[:40],
                            "direction": str(payload.get("direction", ""))[:8], "reasons": codes[:20],
                            "event_id": str(payload.get("event_id", ""))[:64]}
    if share_names:
        who = payload.get("name")
        attributes["name"] = who[:MAX_NAME_CHARS] if isinstance(who, str) else None
    out = [StateUpdate(names.decision, decision, True),
           StateUpdate(names.decision_attributes, json.dumps(attributes, ensure_ascii=False, sort_keys=True), True)]
    temperature = payload.get("temperature")
    if isinstance(temperature, dict) and temperature.get("valid"):
        body = temperature.get("body_c")
        if isinstance(body, int | float) and not isinstance(body, bool) and math.isfinite(body):
            out.append(StateUpdate(names.temperature, f"{float(body):.1f}", True))
    return out
