"""Grants at the community's other gates, as this gate learns them: live peer events (verified by the
intake) and the hub's backfill after an outage. Each becomes a passage (anti-passback, care watch) and
one use of the person's pass, once however often it arrives: the lane remembers what it has seen, the
store refuses a passage it already holds, and a backfilled passage the store already has is skipped
before the lane counts it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.lane import Lane
from edge.protocol.payloads import Passages
from edge.records import Passage, parse_ts
from edge.store import Store

log = logging.getLogger("edge.gate")


class PeerPassages:
    def __init__(self, lane: Lane, store: Store, submit: Callable[..., Any], gate_id: str, *,
                 max_clock_skew_s: float = 120.0) -> None:
        self.lane, self.store, self.submit, self.gate_id = lane, store, submit, gate_id
        self.skew = timedelta(seconds=max_clock_skew_s)

    def on_event(self, event: dict[str, object]) -> None:
        """A verified peer event (intake thread): a grant counts as a passage there."""
        person, ts, gate = event.get("person_id"), event.get("ts"), event.get("gate_id")
        if event.get("decision") != "grant" or not isinstance(person, str) or not isinstance(ts, str):
            return
        try:
            passage = Passage(person, parse_ts(ts), str(gate), "out" if event.get("direction") == "out" else "in")
        except ValueError as exc:
            log.warning("peer event ignored: %s", exc)
            return
        self._note(passage)

    def on_backfill(self, answer: Passages) -> None:
        """The hub's signed answer to this gate's passages request (intake thread)."""
        now = datetime.now(UTC)
        new = 0
        for p in answer.passages:
            if p.gate_id == self.gate_id or p.ts > now + self.skew:
                continue
            passage = Passage(p.person_id, p.ts, p.gate_id, p.direction)
            known = self.store.recent_passages(p.person_id, p.ts)
            if any(k.ts == passage.ts and k.gate_id == passage.gate_id for k in known):
                continue  # the live event already brought it (or an earlier backfill)
            new += self._note(passage)
        log.info("backfill from the hub: %d passages since %s, %d new", len(answer.passages),
                 answer.since.isoformat(), new)

    def _note(self, passage: Passage) -> int:
        if self.lane.note_peer_grant(passage):
            self.submit(self.store.record_peer_passage, passage)
            return 1
        return 0


def reload_passages(lane: Lane, store: Store, anti_passback_s: float) -> None:
    """The recent passages at any gate, from the store, into the lane at start: a restart must not forget
    anti-passback."""
    since = datetime.now(UTC) - timedelta(seconds=max(anti_passback_s, 1.0))
    passages = store.recent_passages(None, since)
    for p in passages:
        lane.note_passage(p)
    if passages:
        log.info("%d recent passages reloaded for anti-passback", len(passages))
