"""The MQTT topic tree of a community: every topic one gate publishes and subscribes to.

Gate topics: `{prefix}/{community}/{gate}/{available|state|events|alarms|whitelist/ack}`.
Admin topics: `{prefix}/{community}/whitelist/{snapshot|delta|current}` and per gate
`{prefix}/{community}/{gate}/whitelist/{snapshot|delta}`. The documents sent on them are in
`edge.protocol.payloads` (gate side) and `edge.protocol.messages` (admin pushes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Every topic one gate uses."""

    prefix: str
    community: str
    gate: str

    def __post_init__(self) -> None:
        for name in ("community", "gate"):
            value = getattr(self, name)
            if not value or any(c in value for c in "/+#") or value in ("whitelist", "hub"):
                raise ValueError(f"{name} {value!r} cannot be an MQTT topic level")

    @property
    def community_base(self) -> str:
        return f"{self.prefix}/{self.community}"

    @property
    def base(self) -> str:
        return f"{self.community_base}/{self.gate}"

    @property
    def available(self) -> str:
        return f"{self.base}/available"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def alarms(self) -> str:
        return f"{self.base}/alarms"

    @property
    def whitelist_ack(self) -> str:
        return f"{self.base}/whitelist/ack"

    def outbox(self, topic_kind: str) -> str | None:
        """Where an outbox row of this kind goes (None: a kind this gate does not publish)."""
        return {"event": self.events, "alarm": self.alarms}.get(topic_kind)

    @property
    def whitelist_push(self) -> list[str]:
        """Admin pushes this gate takes: the community's and its own snapshot and delta topics."""
        return [f"{b}/whitelist/{k}" for b in (self.community_base, self.base) for k in ("snapshot", "delta")]

    @property
    def passages_request(self) -> str:
        """Where this gate asks the hub for the peer passages it missed."""
        return f"{self.base}/passages/request"

    @property
    def passages(self) -> str:
        """Where the hub answers."""
        return f"{self.base}/passages"

    @property
    def hub_state(self) -> str:
        """The community hub's signed heartbeat."""
        return f"{self.community_base}/hub/state"

    @property
    def whitelist_current(self) -> str:
        return f"{self.community_base}/whitelist/current"

    @property
    def peer_events(self) -> str:
        """Passage events of every gate of the community (care watch, cross-gate anti-passback)."""
        return f"{self.community_base}/+/events"

    def gate_of(self, topic: str) -> str | None:
        """The gate level of a `{prefix}/{community}/{gate}/...` topic, or None for another tree."""
        head = self.community_base + "/"
        if not topic.startswith(head):
            return None
        level = topic[len(head):].split("/", 1)[0]
        return level or None
