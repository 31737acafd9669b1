"""The root of the gate's config tree (`GateConfig`) and its small sections: identity and storage,
the local store, the supervisor. Every other section lives in its own module of this package."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from drivers.panel import PanelConfig
from drivers.panel.none import NoPanelConfig
from drivers.relay import LcusConfig, RelayConfig
from drivers.thermal import GyMcu90614Config, ThermalConfig
from edge.config.base import Section
from edge.config.camera import CameraConfig
from edge.config.homeassistant import HomeAssistantConfig
from edge.config.lane import LaneConfig
from edge.config.mqtt import MqttConfig
from edge.config.policy import PolicyConfig
from edge.config.temperature import TemperatureConfig
from edge.config.vision import VisionSection
from edge.config.web import WebConfig

CONFIG_VERSION = 1


class GateSection(Section):
    id: str = Field("gate-1", description="This gate's id: MQTT client id and topic level; unique in the community.",
                    pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    community: str = Field("demo", description="Community (residential estate) this gate belongs to.",
                           pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    data_dir: Path = Field(Path("/var/lib/edge-gate"), description="Where the SQLite store and queues live.")


class StoreSection(Section):
    retention_days: float = Field(30.0, gt=0, le=3650, description="Events already delivered to the server are "
                                  "deleted after this many days; undelivered events are never deleted.")
    snapshots: bool = Field(False, description="Keep a face crop with each event (privacy: off by default).")
    snapshot_retention_days: float = Field(7.0, gt=0, le=365, description="Face crops are deleted after this long.")
    alarm_group_minutes: float = Field(10.0, ge=0, le=1440, description="A repeat of an unacknowledged alarm from "
                                       "the same source (kind, gate, person and, for some kinds, the topic or "
                                       "sender) within this many minutes of its last occurrence is counted on "
                                       "that alarm (shown x37 with the last time) instead of being a new one; "
                                       "its update goes to the server at most once per this interval (high and "
                                       "critical repeats at once). 0: no grouping.")
    alarm_retention_days: float = Field(90.0, gt=0, le=3650, description="Alarms last seen longer ago than this "
                                        "are deleted (an unacknowledged high or critical one with an error in "
                                        "the log).")
    alarm_max_rows: int = Field(10_000, ge=100, le=10_000_000, description="At most this many alarm rows are "
                                "kept: beyond it the acknowledged ones go first, then unacknowledged ones from "
                                "the lowest severity and the oldest (each logged).")


class SupervisorSection(Section):
    restart_min_s: float = Field(1.0, gt=0, le=600, description="First wait before restarting a part that died "
                                 "(the vision thread, the camera thread, a relay that cannot be opened); "
                                 "doubles per failure.")
    restart_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between restarts; a part that "
                                 "stays up this long starts again from restart_min_s.")
    mqtt_fault_after_s: float = Field(60.0, ge=0, le=86400, description="The broker link down this long raises "
                                      "mqtt_fault (mqtt_recovered once it is back); events wait in the outbox.")


class GateConfig(Section):
    version: Literal[1] = Field(1, description="Config file format version.")
    gate: GateSection = Field(default_factory=GateSection, description="Identity and storage of this gate.")
    vision: VisionSection = Field(default_factory=VisionSection, description="Face detection and recognition.")
    camera: CameraConfig = Field(default_factory=CameraConfig, description="The camera facing the lane.")
    thermal: ThermalConfig = Field(default_factory=lambda: GyMcu90614Config(port="/dev/gate-thermal"),
                                   description="The IR thermal sensor; `type` picks the driver.")
    temperature: TemperatureConfig = Field(default_factory=TemperatureConfig,
                                           description="Body temperature from the sensor's readings.")
    lane: LaneConfig = Field(default_factory=LaneConfig, description="Tracking, voting and the relay pulse.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Who may pass, and the fever rule. "
                                 "(gate_id is taken from [gate] id.)")
    store: StoreSection = Field(default_factory=StoreSection, description="The local SQLite store.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Sync with the community server's MQTT "
                             "broker: events out, signed whitelist pushes in.")
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig, description="Home "
                                               "Assistant MQTT discovery and its manual-open button.")
    relay: RelayConfig = Field(default_factory=lambda: LcusConfig(port="/dev/gate-relay"),
                               description="The relay wired to the turnstile; `type` picks the driver.")
    panel: PanelConfig = Field(default_factory=NoPanelConfig, description="An access panel the gate feeds as "
                               "a reader (Wiegand, OSDP); `type` picks the output, \"none\": the relay opens.")
    web: WebConfig = Field(default_factory=WebConfig, description="The guards' status web page.")
    supervisor: SupervisorSection = Field(default_factory=SupervisorSection, description="Restarts of failed "
                                          "parts and the alarms of a lost broker link.")
