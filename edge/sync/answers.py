"""The whitelist applier's answers: acks and nacks (each tied to the push it answers by `push_digest`),
the throttled `whitelist_rejected` alarm, and the snapshot request bookkeeping (SnapshotAsk)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.protocol.limits import MAX_ACK_NOTES
from edge.protocol.payloads import ACK_SCHEMA
from edge.records import ts_text
from edge.store import AlarmRecord, Store, StoreError
from edge.sync.snapshot_ask import SnapshotAsk
from edge.sync.throttle import Throttle

log = logging.getLogger("edge.sync.whitelist")
JsonDict = dict[str, Any]
ALARM_KIND = "whitelist_rejected"
SEVERITY = {"bad_signature": "high", "old_version": "info"}
UNAUTHENTICATED = frozenset({"oversize", "malformed_json", "unknown_schema", "bad_signature"})
ALARM_EVERY_S = 60.0  # one whitelist_rejected alarm per code per minute, with the count held back
NACK_EVERY_S = 1.0  # nacks of unsigned junk: one per code per second (a flood is not echoed)


class Answers:
    def __init__(self, store: Store, *, gate_id: str, community: str, version: Callable[[], int], ask: SnapshotAsk,
                 clock: Callable[[], datetime], monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.gate_id, self.community = store, gate_id, community
        self._version, self.ask, self.clock = version, ask, clock
        self._alarms = Throttle(ALARM_EVERY_S, monotonic)
        self._nacks = Throttle(NACK_EVERY_S, monotonic)

    def ack(self, kind: str, version: int | None, digest: str | None, status: str, code: str, message: str, *,
             counts: JsonDict | None = None, errors: list[JsonDict] | None = None,
             notes: list[JsonDict] | None = None, need_snapshot: bool = False) -> JsonDict:
        """An ack document; `notes` only when there are some (an ack without them is what older readers know)."""
        if need_snapshot:
            self.ask.need()
        doc = {"schema": ACK_SCHEMA, "gate": self.gate_id, "community": self.community,
               "ts": ts_text(self.clock()), "kind": kind, "version": version, "push_digest": digest,
               "current_version": self._version(), "status": status, "code": code, "message": message,
               "need_snapshot": need_snapshot,
               "counts": counts or {"upserted": 0, "patched": 0, "deleted": 0, "templates": 0},
               "errors": errors or []}
        if notes:
            doc["notes"] = notes[:MAX_ACK_NOTES]
        return doc

    def reject(self, kind: str, version: int | None, digest: str | None, code: str, message: str, topic: str,
                need_snapshot: bool = False) -> JsonDict | None:
        """The nack of a refused push (None: a nack of unsigned junk held back by the throttle), with a
        `whitelist_rejected` alarm written at most once a minute per code (a store write per junk push
        would let a flood load the disk), counting the rejections held back since; the store groups
        them by topic and code into one alarm (edge.store.alarms)."""
        held = self._alarms.hit(code)
        if held is None:
            log.debug("whitelist %s push rejected again: %s", kind, code)
        else:
            log.error("whitelist %s push (version %s, topic %s) rejected: %s: %s%s", kind, version, topic or "-",
                      code, message, f" ({held} more since the last alarm)" if held else "")
            try:
                self.store.record_alarm(AlarmRecord(
                    ts=self.clock(), kind=ALARM_KIND, severity=SEVERITY.get(code, "warning"),
                    message=f"whitelist push rejected ({code}): {message}"[:1000], gate_id=self.gate_id,
                    count=held + 1,  # the store adds them to the alarm's group: its count is every rejection
                    details={"code": code, "kind": kind, "version": version, "topic": topic,
                             "push_digest": digest, "rejected_since_last": held + 1}))
            except (StoreError, ValueError) as exc:
                log.error("cannot record the whitelist_rejected alarm: %s", exc)
        if code in UNAUTHENTICATED and self._nacks.hit(code) is None:
            return None
        return self.ack(kind, version, digest, "rejected", code, message, need_snapshot=need_snapshot)


def not_found_notes(version: int | None, absent: list[str]) -> list[JsonDict]:
    """The ack's notes for the deletes of persons this gate did not have (the delete still applies: they
    are absent, as asked), and one log line saying so: the register and this gate disagreed on them."""
    if not absent:
        return []
    shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
    log.warning("whitelist delta version %s deletes %d person(s) this gate does not have (%s); nothing to "
                "delete, applied", version, len(absent), shown)
    return [{"id": pid, "code": "not_found"} for pid in absent[:MAX_ACK_NOTES]]


def peek(raw: bytes, code: str) -> tuple[str, int | None]:
    """(kind, version) of a push that was refused, as far as it can be read (for its nack)."""
    if code in ("oversize", "malformed_json"):
        return "unknown", None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return "unknown", None
    schema = str(data.get("schema", "")) if isinstance(data, dict) else ""
    kind = "snapshot" if "whitelist-snapshot" in schema else "delta" if "whitelist-delta" in schema else "unknown"
    version = data.get("version") if isinstance(data, dict) else None
    return kind, version if isinstance(version, int) and not isinstance(version, bool) else None
