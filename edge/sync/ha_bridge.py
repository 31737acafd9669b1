"""The gate's Home Assistant side at run time (`HaBridge`): publishes the discovery configs and the
`ha/...` states (edge.sync.ha_discovery builds them) on each connect and when Home Assistant's birth
message says `online`, keeps those states up to date from the gate's decisions and alarms, and answers
the manual-open button.

Threads: it never calls paho. `publish` is the network thread's queue (`Link.publish`); `on_link` runs
on the network thread, `on_status` and `on_press` on the intake thread (they are the intake's routes),
`on_gate_event` on whichever thread the gate published from.

The button (off unless configured) is a shared secret: a press is looked at only once per
`button_min_interval_s` (the rest are dropped and counted), compared in constant time, and a press
with anything but the secret is refused with an `ha_button_refused` alarm. A good press opens the gate
as the guards' page does (`Gate.manual_open`: relay pulse, event, audit row) as guard `homeassistant`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from edge.config.gate import GateConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.protocol.topics import Topics
from edge.sync.ha_discovery import HaTopics, discovery_configs, initial_states, state_updates
from edge.sync.throttle import Throttle

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
Publish = Callable[[str, str, int, bool], None]  # topic, payload, qos, retain
AlarmSink = Callable[[str, str, str, JsonDict], None]  # kind, severity, message, details
GUARD = "homeassistant"
REASON = "Home Assistant button"
MAX_PRESS_BYTES = 1024
BIRTHS_PER_MINUTE = 10  # republishes asked by `homeassistant/status` beyond this in a minute are ignored


class HaBridge:
    def __init__(self, cfg: HomeAssistantConfig, topics: Topics, *, secret: str | None = None,
                 manual_open: Callable[[str, str], object] | None = None, alarm: AlarmSink | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if cfg.button_enabled and (secret is None or manual_open is None):
            raise ValueError("the Home Assistant button needs its secret and the gate's manual open")
        self.cfg = cfg
        self.names = HaTopics(topics, cfg.discovery_prefix)
        self._secret = secret if cfg.button_enabled else None
        self._manual_open = manual_open
        self._alarm = alarm
        self._clock = clock
        self._publish: Publish | None = None
        self._connected: Callable[[], bool] = lambda: False
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[str, bool]] = {self.names.alarm(n): (p, True)
                                                     for n, p in initial_states().items()}
        self._births: deque[float] = deque()
        self._last_press = float("-inf")
        self._log_throttle = Throttle(60.0)
        self.republished = 0  # discovery published (connects and births)
        self.presses = {"opened": 0, "refused": 0, "dropped": 0, "failed": 0}

    def attach(self, publish: Publish, connected: Callable[[], bool]) -> None:
        """The link's queued publish and its connected flag (MqttSync gives them)."""
        self._publish = publish
        self._connected = connected

    def routes(self) -> dict[str, Callable[[bytes], None]]:
        """The topics the intake subscribes to for this bridge, each with its handler (intake thread)."""
        out: dict[str, Callable[[bytes], None]] = {self.names.status: self.on_status}
        if self._secret is not None:
            out[self.names.press] = self.on_press
        return out

    # ---------------------------------------------------------------------------------------- publishing

    def on_link(self, up: bool) -> None:
        """The broker link came up (network thread): everything, retained."""
        if up:
            self.publish_all()

    def publish_all(self) -> None:
        """The discovery configs (the button's empty unless it is on), then every state known so far."""
        if self._publish is None:
            return
        configs = discovery_configs(self.names, alarm_hold_s=self.cfg.alarm_hold_s, button_secret=self._secret)
        for topic, payload in configs.items():
            self._publish(topic, payload, 1, True)
        with self._lock:
            states = [(t, p) for t, (p, retain) in self._latest.items() if retain]
        for topic, payload in states:
            self._publish(topic, payload, 1, True)
        self.republished += 1

    def on_gate_event(self, kind: str, payload: dict[str, object]) -> None:
        """A decision or an alarm of the gate (`Gate.subscribe`): the `ha/...` states it changes."""
        try:
            updates = state_updates(self.names, kind, dict(payload), share_names=self.cfg.share_names)
        except Exception:  # an observer's bug must not reach the gate's decision path
            log.exception("Home Assistant state for a %s failed", kind)
            return
        if not updates:
            return
        with self._lock:
            for u in updates:
                self._latest[u.topic] = (u.payload, u.retain)
        if self._publish is not None and self._connected():
            for u in updates:
                self._publish(u.topic, u.payload, 1, u.retain)

    # ---------------------------------------------------------------------------------------- intake

    def on_status(self, payload: bytes) -> None:
        """Home Assistant's birth (`online`) asks for the configs again; `offline` and junk do nothing."""
        text = payload[:64].decode("utf-8", "replace").strip()
        if text != "online":
            if text not in ("offline", "") and self._log_throttle.hit("status") is not None:
                log.error("Home Assistant status %r on %s ignored (expected online or offline)",
                          text[:32], self.names.status)
            return
        now = self._clock()
        while self._births and now - self._births[0] > 60.0:
            self._births.popleft()
        if len(self._births) >= BIRTHS_PER_MINUTE:
            if self._log_throttle.hit("births") is not None:
                log.error("Home Assistant birth messages flood %s: republishing at most %d times a minute",
                          self.names.status, BIRTHS_PER_MINUTE)
            return
        self._births.append(now)
        log.info("Home Assistant is online: discovery configs published again")
        self.publish_all()

    def on_press(self, payload: bytes) -> None:
        """The open button's press: rate-limited, the secret checked in constant time, then the gate opens."""
        now = self._clock()
        if now - self._last_press < self.cfg.button_min_interval_s:
            self.presses["dropped"] += 1
            if self._log_throttle.hit("press_dropped") is not None:
                log.warning("Home Assistant open press dropped: at most one per %g s",
                            self.cfg.button_min_interval_s)
            return
        self._last_press = now
        assert self._secret is not None and self._manual_open is not None
        if len(payload) > MAX_PRESS_BYTES:
            self._refuse("too_large", f"{len(payload)} bytes")
            return
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._refuse("malformed", "not UTF-8")
            return
        if not hmac.compare_digest(text.encode(), self._secret.encode()):
            self._refuse("wrong_secret", f"{len(payload)} bytes")
            return
        try:
            self._manual_open(GUARD, REASON)
        except Exception as exc:  # RelayError, a refused decision: logged and counted, the intake goes on
            self.presses["failed"] += 1
            log.error("Home Assistant open press: the gate did not open: %s", exc)
            return
        self.presses["opened"] += 1
        log.warning("gate opened by the Home Assistant button")

    def _refuse(self, reason: str, detail: str) -> None:
        self.presses["refused"] += 1
        log.error("Home Assistant open press on %s refused (%s: %s)", self.names.press, reason, detail)
        if self._alarm is not None:
            self._alarm("ha_button_refused", "high", f"Home Assistant open button pressed without the right "
                        f"secret ({reason}); the gate stayed shut", {"reason": reason, "topic": self.names.press})


def make_bridge(cfg: GateConfig, *, manual_open: Callable[[str, str], object], alarm: AlarmSink | None,
                subscribe: Callable[[Callable[[str, dict[str, object]], None]], object]) -> HaBridge | None:
    """The bridge for a gate's config, fed from `subscribe` (`Gate.subscribe`), or None when Home
    Assistant discovery (or MQTT) is off. SecretError when the button is on and its secret cannot be read."""
    ha = cfg.homeassistant
    if not ha.enabled:
        return None
    if not cfg.mqtt.enabled:
        log.warning("[homeassistant] enabled needs [mqtt] enabled: nothing is published")
        return None
    bridge = HaBridge(ha, Topics(cfg.mqtt.topic_prefix, cfg.gate.community, cfg.gate.id), secret=ha.secret(),
                      manual_open=manual_open, alarm=alarm)
    subscribe(bridge.on_gate_event)
    return bridge
