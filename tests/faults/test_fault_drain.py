"""Fault: SIGKILL in the middle of an outbox drain. The real `gate run` process starts with a large
backlog (a long outage's worth of events) and is killed while it sends it, deciding all the while;
after the restart every event, of the backlog and of both runs' decisions, reaches the server by
event_id, and the outbox drains to empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import (
    GATE,
    TOPICS,
    GateProcess,
    Subscriber,
    check_store,
    committed,
    delivered,
    gate_config,
    mqtt_section,
    query,
    wait_until,
)

from edge.store import Store
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto

BACKLOG = 20_000  # about 4 s of drain at full speed on this machine


def rows(db: Path, table: str) -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


@pytest.mark.fault
def test_sigkill_during_outbox_drain(prepared: Path, tmp_path: Path, broker: Mosquitto) -> None:
    config = gate_config(prepared, tmp_path, extra=mqtt_section(broker.url))
    db = tmp_path / "data" / "gate.db"
    with Store.open(db) as store:
        backlog = fill_outbox(store, BACKLOG, gate_id=GATE)
    server = Subscriber(broker.port, [TOPICS.events, TOPICS.available], client_id="server")
    try:
        gate = GateProcess(config, tmp_path, name="gate1")
        try:
            wait_until(lambda: rows(db, "outbox") <= BACKLOG - 2000 and rows(db, "events") > BACKLOG, 60,
                       "the first run to send part of the backlog while deciding", every=0.01)
            gate.kill()
        finally:
            if gate.alive():
                gate.kill()
        before = committed(db)  # what the killed run left: the backlog and the events it had committed
        left = rows(db, "outbox")
        assert 0 < left < BACKLOG, "the kill was not mid-drain"
        wait_until(lambda: server.on(TOPICS.available)[-1:] == [b"offline"], 10, "the will after SIGKILL")

        gate = GateProcess(config, tmp_path, name="gate2")
        try:
            wait_until(lambda: rows(db, "outbox") == 0, 90, "the restarted gate to drain the outbox", every=0.05)
            decided = len(gate.decisions)
            wait_until(lambda: len(gate.decisions) > decided, 30, "a decision after the drain")
            assert gate.stop() == 0, gate.log[-3000:]
        finally:
            if gate.alive():
                gate.kill()
        stored = check_store(db, before)
        sent = {e.event_id for e in stored if e.synced}
        assert set(backlog) <= sent
        wait_until(lambda: sent <= set(delivered(server)), 20, "every delivered event at the server", every=0.2)
        assert before <= sent
        assert server.on(TOPICS.available)[-1:] == [b"stopped"]
    finally:
        server.close()
