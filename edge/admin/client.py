"""AdminClient: the admin commands' short-lived MQTT v5 connection (paho's own loop thread), with the
messages it received kept for `wait`."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.config.mqtt import MqttConfig
from edge.sync.client import make_client


class AdminClient:
    """A short-lived MQTT v5 connection for the admin commands; mqtts:// with the system's CAs or
    `tls_ca`, and a client certificate (`tls_cert` + `tls_key`) where the broker asks for one."""

    def __init__(self, url: str, prefix: str = "edge-gate", username: str | None = None,
                 password: str | None = None, *, tls_ca: Path | None = None, tls_cert: Path | None = None,
                 tls_key: Path | None = None, tls_min_version: Literal["1.2", "1.3"] = "1.2") -> None:
        cfg = MqttConfig(url=url, topic_prefix=prefix, username=username or None, tls_ca_file=tls_ca,
                         tls_cert_file=tls_cert, tls_key_file=tls_key, tls_min_version=tls_min_version)
        self.url = url
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self.retained: list[bool] = []  # per message: sent because it was retained (not live)
        self._cond = threading.Condition()
        self.client = make_client(cfg, f"edge-gate-admin-{time.time_ns()}", password=password)
        self.client.on_message = self._on_message
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client.on_connect = self._on_connect
        try:
            self.client.connect(cfg.host, cfg.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionError(f"cannot connect to {url}: the broker's TLS certificate is not trusted "
                                  f"({exc.verify_message or exc}); give the broker's CA with --tls-ca") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionError(f"cannot connect to {url}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise ConnectionError(f"cannot connect to {url}: " + (self._refused or "no CONNACK within 10 s"))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if rc.is_failure:
            self._refused = f"the broker refused the connection ({rc})"
        else:
            self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.retained.append(bool(msg.retain))
            self._cond.notify_all()

    def subscribe(self, topics: list[str]) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        done.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False, expiry_s: int | None = None) -> None:
        """QoS 1, waits for the PUBACK; `expiry_s`: the broker drops the (retained) message after it."""
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = max(1, int(expiry_s))
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        info.wait_for_publish(30)
        if not info.is_published():
            raise ConnectionError(f"publish to {topic} was not acknowledged")

    def received(self) -> int:
        """How many messages came in so far."""
        with self._cond:
            return len(self.messages)

    def retained_flags(self) -> list[bool]:
        """Per message received so far: True if the broker sent it because it was retained (not live)."""
        with self._cond:
            return list(self.retained)

    def wait(self, count: int, timeout: float) -> list[tuple[str, bytes]]:
        """The messages received so far, once there are `count` of them or `timeout` s passed."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
