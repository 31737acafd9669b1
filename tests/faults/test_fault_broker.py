"""Fault: the community broker goes away for a while (the mosquitto process stopped) and comes back on
the same port, while the real gate keeps deciding. Once the link has been down for the grace period
the guards get one mqtt_fault alarm, and mqtt_recovered when it is back. Every event and alarm
recorded meanwhile reaches the server once the broker is back (by event_id; a duplicate is allowed, a
loss is not) and the outbox drains to empty."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fault_helpers import (
    TOPICS,
    LiveGate,
    Subscriber,
    check_store,
    delivered,
    gate_config,
    mqtt_section,
    wait_until,
)

from edge.tools.broker import Mosquitto

# 20 s in the suite; EDGE_GATE_OUTAGE_S=300 runs the same test with a five-minute outage (the "minutes")
OUTAGE_S = float(os.environ.get("EDGE_GATE_OUTAGE_S", "20"))
GRACE_S = 3.0  # [supervisor] mqtt_fault_after_s, well inside the outage


@pytest.mark.fault
def test_broker_down_for_a_while_then_back(prepared: Path, tmp_path: Path, broker: Mosquitto) -> None:
    config = gate_config(prepared, tmp_path,
                         extra=mqtt_section(broker.url) + f"[supervisor]\nmqtt_fault_after_s = {GRACE_S}\n")
    server = Subscriber(broker.port, [TOPICS.events, TOPICS.alarms], client_id="server", persistent=True)
    try:
        with LiveGate(config) as live:
            sync = live.gate.sync
            assert sync is not None and sync.wait_connected(10)
            before = [o.event.event_id for o in live.wait_decided(0, "decisions before the outage", n=2)]
            wait_until(lambda: set(before) <= set(delivered(server)), 10,
                       "the first events at the server")

            down = time.monotonic()  # before the stop: the gate may see the link drop before stop() returns
            down_at = datetime.now(UTC)
            broker.stop()
            wait_until(lambda: not sync.connected, 10, "the gate to notice the broker is gone")
            fault = live.wait_alarm("mqtt_fault", down, part="mqtt", timeout=GRACE_S + 10)
            fault_t = next(t for t, a in live.alarms if a is fault)
            assert fault_t - down >= GRACE_S  # not before the grace period is over
            assert fault["severity"] == "high" and "broker unreachable" in fault["message"]
            assert not live.gate.health["mqtt"].ok
            wait_until(lambda: time.monotonic() - down >= OUTAGE_S and len(live.decided(down)) >= 10,
                       OUTAGE_S + 60, f"{OUTAGE_S:g} s of outage with the gate deciding on", every=0.2)
            meanwhile = live.decided(down)
            mqtt = live.gate.health_snapshot()["mqtt"]
            assert mqtt is not None and not mqtt["connected"] and mqtt["last_error"]  # type: ignore[index]
            wait_until(lambda: live.gate.store.outbox_depth() >= len(meanwhile), 5,  # the writer is a thread
                       "every decision of the outage waiting in the outbox")
            event_ids = {o.event.event_id for o in meanwhile}
            assert any(o.event.alarms for o in meanwhile), "no stranger came by during the outage"
            # repeats of one source are counted on one alarm (edge.store.alarms): the alarms raised meanwhile
            # reach the server as the alarms (groups) the store counted them on
            alarm_ids = {a.id for a in live.gate.store.alarms(since=down_at, limit=1000)}
            assert len(live.alarmed("mqtt_fault", down)) == 1  # one alarm for the whole outage
            alarm_ids.add(str(fault["id"]))  # the guards' alarm reaches the server too, once it can

            broker.start()  # same port, same persistence file
            back = time.monotonic()
            assert sync.wait_connected(20)
            live.wait_alarm("mqtt_recovered", back, part="mqtt", timeout=10)
            assert live.gate.health["mqtt"].ok
            wait_until(lambda: live.gate.store.outbox_depth() == 0, 30, "the outbox to drain")
            wait_until(lambda: event_ids <= set(delivered(server))
                       and alarm_ids <= set(delivered(server, TOPICS.alarms, "id")), 20,
                       "every event and alarm of the outage at the server")
            assert sync.health()["connects"] >= 2
            live.wait_decided(time.monotonic(), "decisions after the outage")
        stored = check_store(live.db, live.event_ids())
        wait_until(lambda: {e.event_id for e in stored if e.synced} <= set(delivered(server)), 10,
                   "every event the gate marked delivered at the server")
    finally:
        server.close()
