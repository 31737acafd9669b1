"""The broker-side observer of a fleet run: a QoS 1 subscriber to every community's events, alarms and
whitelist acks and to the broker's $SYS figures, recording what arrived and when."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config.mqtt import MqttConfig
from edge.records import parse_ts


class Collector:
    """A QoS 1 subscriber with a persistent session (nothing is missed across a reconnect): every event id
    with its receive time, alarms, whitelist acks and the broker's $SYS figures."""

    def __init__(self, url: str, prefix: str, communities: list[str]) -> None:
        self.lock = threading.Lock()
        self.first_seen: dict[str, float] = {}
        self.latencies: list[float] = []
        self.duplicates = 0
        self.bad = 0
        self.alarms: dict[str, int] = {}
        self.acks: list[tuple[str, int | None, str, str, float]] = []  # gate, version, status, code, time
        self.sys: dict[str, str] = {}
        self.connects = 0
        self.topics = [f"{prefix}/{c}/+/{leaf}" for c in communities for leaf in ("events", "alarms", "whitelist/ack")]
        self.topics.append("$SYS/broker/#")
        self._subscribed = threading.Event()
        cfg = MqttConfig(url=url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-collector-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(cfg.host, cfg.port, keepalive=30,
                            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(15):
            raise ConnectionError(f"collector: no SUBACK from {url}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self.connects += 1
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        topic = msg.topic
        if topic.startswith("$SYS/"):
            self.sys[topic] = bytes(msg.payload).decode(errors="replace")
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            self.bad += 1
            return
        with self.lock:
            if topic.endswith("/events"):
                event_id = str(doc.get("event_id"))
                if event_id in self.first_seen:
                    self.duplicates += 1
                    return
                self.first_seen[event_id] = now
                self.latencies.append(now - parse_ts(str(doc["ts"])).timestamp())
            elif topic.endswith("/alarms"):
                kind = str(doc.get("kind"))
                self.alarms[kind] = self.alarms.get(kind, 0) + 1
            else:
                self.acks.append((str(doc.get("gate")), doc.get("version"), str(doc.get("status")),
                                  str(doc.get("code")), now))

    def applied(self) -> set[tuple[str, int | None]]:
        """(gate, version) of every ack that says the push was applied."""
        with self.lock:
            return {(g, v) for g, v, status, _c, _t in self.acks if status == "applied"}

    def has(self, ids: set[str]) -> bool:
        with self.lock:
            return ids.issubset(self.first_seen.keys())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
