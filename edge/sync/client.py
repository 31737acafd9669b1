"""The one builder of paho clients: the gate's sync, the admin commands and `gate selftest` all connect
with the same protocol version, credentials and TLS setup (`MqttConfig.ssl_context()`: CA, client
certificate, minimum TLS version), so the self-test checks what the gate will really use."""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.mqtt import MqttConfig


def make_client(cfg: MqttConfig, client_id: str, *, password: str | None = None,
                will: tuple[str, str] | None = None, logger: logging.Logger | None = None,
                manual_ack: bool = False) -> mqtt.Client:
    """A paho client (callback API 2, not yet connected) for `cfg`: MQTT v5 unless `cfg.protocol` is
    3.1.1 (then a clean session), `cfg.username` with `password` (already resolved), TLS for mqtts://,
    and `will` = (topic, payload) as a retained QoS 1 last will. `logger` gets paho's own log.
    `manual_ack`: incoming QoS 1 messages are acknowledged only by `client.ack()` (the hub acks what it stored).
    OSError / ssl.SSLError / ValueError when the TLS files cannot be read."""
    v5 = cfg.protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, clean_session=None if v5 else True,
                         manual_ack=manual_ack)
    if logger is not None:
        client.enable_logger(logger)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, password)
    if cfg.tls:
        client.tls_set_context(cfg.ssl_context())
    return client


def failed(rc: ReasonCode | int) -> bool:
    """A CONNACK/SUBACK/PUBACK reason code (v5) or return code (3.1.1) that means failure."""
    return bool(rc.is_failure) if isinstance(rc, ReasonCode) else int(rc) >= 128
