"""Prometheus metrics of one gate: decisions and alarms counted as they are published, the rest read
from the gate's health snapshot at scrape time. One registry per app (no process-global state)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.web.ports import GateActions

_KIND = re.compile(r"^[a-z0-9_]{1,40}$")


class _HealthCollector(Collector):
    def __init__(self, gate: GateActions) -> None:
        self.gate = gate

    def collect(self) -> Iterator[Metric]:
        h: dict[str, Any] = self.gate.health()
        cam = h.get("camera") or {}
        relay = h.get("relay") or {}
        wl = h.get("whitelist") or {}
        yield GaugeMetricFamily("edge_gate_up", "1 when every gate thread is alive and fresh",
                                value=1.0 if self.gate.alive() else 0.0)
        yield GaugeMetricFamily("edge_gate_camera_fps", "Frames per second delivered by the camera",
                                value=float(cam.get("fps") or 0.0))
        yield GaugeMetricFamily("edge_gate_camera_skipped_fps", "Frames per second dropped before vision",
                                value=float(cam.get("skipped_fps") or 0.0))
        yield GaugeMetricFamily("edge_gate_outbox_depth", "Events and alarms waiting for the server",
                                value=float(h.get("outbox_depth") or 0))
        yield CounterMetricFamily("edge_gate_relay_pulses", "Relay pulses since the gate started",
                                  value=float(relay.get("pulses") or 0))
        yield GaugeMetricFamily("edge_gate_relay_on", "1 while the relay is energised",
                                value=1.0 if relay.get("on") else 0.0)
        yield GaugeMetricFamily("edge_gate_whitelist_persons", "Persons in the cached whitelist",
                                value=float(wl.get("persons") or 0))
        version = wl.get("version")
        if isinstance(version, int | float):
            yield GaugeMetricFamily("edge_gate_whitelist_version", "Version of the applied whitelist",
                                    value=float(version))
        yield GaugeMetricFamily("edge_gate_whitelist_need_snapshot", "1 while the gate asks for a snapshot",
                                value=1.0 if wl.get("need_snapshot") else 0.0)
        sync = h.get("mqtt") or {}
        for key, text in (("peer_events", "Peer-gate passage events accepted (signed by a member gate)"),
                          ("peer_rejected", "Peer-gate events refused: forged, unsigned, unlisted, malformed, future"),
                          ("intake_shed", "Incoming MQTT messages shed under a flood"),
                          ("pushes", "Whitelist pushes handled")):
            yield CounterMetricFamily(f"edge_gate_mqtt_{key}", text, value=float(sync.get(key) or 0))
        panel = h.get("panel")
        if isinstance(panel, dict):  # panel mode: what the access-panel link counted (PanelLink.snapshot)
            for key, text in (("malformed_frames", "Malformed frames heard on the access panel's bus (OSDP)"),
                              ("cards_sent", "Cards sent to the access panel"),
                              ("send_failures", "Cards the access panel could not be sent"),
                              ("fallbacks", "Grants while the access panel was offline or refused the card"),
                              ("no_card", "Grants of persons without a card (the panel not told)")):
                yield CounterMetricFamily(f"edge_gate_panel_{key}", text, value=float(panel.get(key) or 0))


class GateMetrics:
    def __init__(self, gate: GateActions) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.decisions = Counter("edge_gate_decisions", "Access decisions by outcome", ["outcome"],
                                 registry=self.registry)
        self.alarms = Counter("edge_gate_alarms", "Alarms by kind", ["kind"], registry=self.registry)
        self.latency = Histogram("edge_gate_decision_latency_seconds",
                                 "First usable frame of a face to the decision (relay command)",
                                 buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
                                 registry=self.registry)
        for outcome in ("grant", "deny"):
            self.decisions.labels(outcome=outcome)
        self.registry.register(_HealthCollector(gate))

    def observe(self, kind: str, payload: dict[str, object]) -> None:
        """Called on the gate's thread for every published decision and alarm."""
        if kind == "decision":
            outcome = payload.get("decision")
            self.decisions.labels(outcome=outcome if outcome in ("grant", "deny") else "other").inc()
            latency = payload.get("latency_ms")
            if isinstance(latency, int | float):
                self.latency.observe(float(latency) / 1000.0)
        elif kind == "alarm":
            alarm_kind = str(payload.get("kind", ""))
            self.alarms.labels(kind=alarm_kind if _KIND.match(alarm_kind) else "other").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
