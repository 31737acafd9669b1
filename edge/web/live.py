"""Live updates: one gate subscription fanned out to an asyncio queue per browser (Server-Sent Events).

The gate calls back on its own threads; the hand-over to the event loop is `call_soon_threadsafe`, and
a slow client loses its oldest items rather than holding the gate up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge.web.metrics import GateMetrics
from edge.web.ports import GateActions

log = logging.getLogger(__name__)

Item = tuple[str, dict[str, object]] | None  # None: the stream ends (server stopping)
QUEUE_SIZE = 200


class Live:
    def __init__(self, gate: GateActions, metrics: GateMetrics) -> None:
        self.gate = gate
        self.metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[Item]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.closed = False
        self._unsubscribe = self.gate.subscribe(self._on_gate)

    def _on_gate(self, kind: str, payload: dict[str, object]) -> None:
        """On a gate thread."""
        self.metrics.observe(kind, payload)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, (kind, dict(payload)))
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("live update after the web loop closed: %s", kind)

    def _fan_out(self, item: Item) -> None:
        """On the event loop."""
        for q in list(self._clients):
            if q.full():
                q.get_nowait()  # drop the oldest for a client that does not keep up
            q.put_nowait(item)

    def open(self) -> asyncio.Queue[Item]:
        q: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)
        if self.closed:
            q.put_nowait(None)
        self._clients.add(q)
        return q

    def close_client(self, q: asyncio.Queue[Item]) -> None:
        self._clients.discard(q)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def stop(self) -> None:
        """On the event loop (lifespan shutdown): unsubscribe and end every stream."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.closed = True
        self._fan_out(None)

    def stop_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.stop)
            except RuntimeError:
                log.debug("web loop already closed")
