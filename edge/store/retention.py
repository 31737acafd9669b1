"""Retention: what the store deletes on its own, once an hour while the gate runs.

Delivered events older than `[store] retention_days` (undelivered ones stay until the server has them),
face crops older than `snapshot_retention_days`, passages older than `retention_days` (but never
one that anti-passback still needs, and never a person's latest passage, which care watch needs), and
alarms last seen before `alarm_retention_days`, then any beyond `alarm_max_rows` (acknowledged ones
first; the store also holds that ceiling as it writes, `edge.store.alarms`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.config.gate import StoreSection
from edge.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    events: int
    snapshots: int
    passages: int
    alarms: int = 0


def purge_expired(store: Store, cfg: StoreSection, *, anti_passback_s: float = 0.0,
                  now: datetime | None = None) -> Purged:
    """One retention pass (run it on the store's writer thread)."""
    passages_after = max(timedelta(days=cfg.retention_days), timedelta(seconds=anti_passback_s))
    done = Purged(events=store.purge_synced_events(timedelta(days=cfg.retention_days), now=now),
                  snapshots=store.purge_snapshots(timedelta(days=cfg.snapshot_retention_days), now=now),
                  passages=store.purge_passages(passages_after, now=now),
                  alarms=store.purge_alarms(timedelta(days=cfg.alarm_retention_days), now=now)
                  + store.cap_alarms(cfg.alarm_max_rows))
    if done.events or done.snapshots or done.passages or done.alarms:
        log.info("retention: %d delivered events, %d face crops, %d passages and %d alarms deleted", done.events,
                 done.snapshots, done.passages, done.alarms)
    return done
