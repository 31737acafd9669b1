"""Backfill: a gate that was away asks the hub for the other gates' grants it missed (protocol §7b). On
each connect it sends a signed `passages/request` from the moment it lost the broker (at start:
`backfill_hours` back); the hub answers on `passages`; an answer marked `more` is followed by the next
request from its last passage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from edge.protocol.payloads import PASSAGES_REQUEST_SCHEMA, Passages
from edge.protocol.signing import SigningKey
from edge.records import ts_text
from edge.sync.identity import seal

MARGIN = timedelta(seconds=60)  # a passage published just before the loss may not have reached this gate


class Backfill:
    def __init__(self, key: SigningKey, gate: str, hours: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.key, self.gate, self.clock = key, gate, clock
        self._lost_at: datetime | None = self.clock() - timedelta(hours=hours)  # at start: the whole window
        self._lock = threading.Lock()

    def request(self, since: datetime) -> str:
        return seal(self.key, {"schema": PASSAGES_REQUEST_SCHEMA, "gate": self.gate, "since": ts_text(since),
                               "ts": ts_text(self.clock())})

    def on_link(self, connected: bool) -> str | None:
        """The link's hook (network thread): the request to send on a connect, or note a loss."""
        with self._lock:
            if not connected:
                self._lost_at = self.clock() - MARGIN
                return None
            since, self._lost_at = self._lost_at, None
        return None if since is None else self.request(since)

    def next_request(self, answer: Passages) -> str | None:
        """After an answer with `more`: the request for the rest."""
        if not answer.more or not answer.passages:
            return None
        return self.request(answer.passages[-1].ts)
