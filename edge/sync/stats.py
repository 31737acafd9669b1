"""The sync's counters and its last error, shared by the network, ack and intake threads and read by
`MqttSync.health()` (and so by the retained state document)."""

from __future__ import annotations

import logging
import threading
from typing import Any

JsonDict = dict[str, Any]


class SyncStats:
    """Thread-safe counters (`published`, `acked`, `failed`, `connects`, `pushes`, `peer_events`,
    `peer_rejected`, `intake_shed`), `connected_since` and `last_error`; errors are logged on `log`."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._values: JsonDict = {"published": 0, "acked": 0, "failed": 0, "connects": 0, "last_error": None,
                                  "connected_since": None, "pushes": 0, "peer_events": 0, "peer_rejected": 0,
                                  "intake_shed": 0}

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._values[key] += n

    def set(self, key: str, value: object) -> None:
        with self._lock:
            self._values[key] = value

    def error(self, message: str, *args: object) -> None:
        """Log an error and keep it as `last_error`."""
        text = message % args if args else message
        self.log.error("%s", text)
        self.set("last_error", text)

    def snapshot(self) -> JsonDict:
        with self._lock:
            return dict(self._values)
