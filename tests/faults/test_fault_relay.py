"""Fault: the relay board vanishes (its pty closes, as on a USB unplug) so the pulse of a grant cannot
be written. The decision is still recorded, with a relay_fault alarm; the supervisor marks the relay
failed, the gate keeps deciding, and once the board is back the next grant opens the turnstile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fault_helpers import LiveGate, check_store, gate_config, wait_until

from drivers.emulators.relay import LcusSim


@pytest.mark.fault
def test_relay_write_fails_at_a_pulse(prepared: Path, tmp_path: Path) -> None:
    with LiveGate(gate_config(prepared, tmp_path)) as live:
        board: LcusSim = live.gate.relay.sim  # type: ignore[attr-defined]
        live.wait_decided(0, "a first grant", where=lambda o: o.event.decision == "grant")
        wait_until(lambda: len(board.log.changes) >= 2 and not board.coil(), 10, "the board switched on and off")
        switched = len(board.log.changes)

        board.unplug()
        unplugged = time.monotonic()
        failed = live.wait_decided(unplugged, "a grant whose pulse cannot be written",
                                   where=lambda o: o.event.decision == "grant" and bool(o.event.alarms))[0]
        assert [a["kind"] for a in failed.event.alarms] == ["relay_fault"]
        assert "could not switch the relay on" in failed.event.alarms[0]["message"]
        part = live.wait_alarm("relay_fault", unplugged, part="relay", timeout=10)
        assert part["severity"] == "high"
        assert not live.gate.health["relay"].ok and not live.gate.health_snapshot()["relay"]["ok"]  # type: ignore[index]
        assert live.gate.relay.stats.write_failures >= 2  # the write and its one reopen-and-retry
        live.wait_decided(unplugged, "the gate deciding on without its relay", n=3)
        assert len(board.log.changes) == switched  # nothing reached the board meanwhile
        grants = live.decided(unplugged + 0.1, lambda o: o.event.decision == "grant")
        assert grants and all([a["kind"] for a in o.event.alarms] == ["relay_fault"] for o in grants)

        board.plug()
        back = time.monotonic()
        live.wait_decided(back, "a grant that opens once the board is back",
                          where=lambda o: o.event.decision == "grant" and not o.event.alarms)
        live.wait_alarm("relay_recovered", back, part="relay", timeout=10)
        wait_until(lambda: len(board.log.changes) >= switched + 2 and not board.coil(), 10,
                   "the board switched on and off again")
        assert board.log.changes[switched].on
    stored = check_store(live.db, live.event_ids(), ["relay_fault", "relay_recovered"])
    event = next(e for e in stored if e.event_id == failed.event.event_id)
    assert event.decision == "grant" and [a["kind"] for a in event.alarms] == ["relay_fault"]
