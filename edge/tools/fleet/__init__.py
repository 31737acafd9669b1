"""Fleet load: N simulated gates against one MQTT broker, each running the gate's real sync code.

  scripts/fleet.py --gates 200 --rate 5 --seconds 300 [--deltas-every 10] [--broker mqtt://host:port]
                   [--workers N] [--communities 1] [--peer-events] [--json]

Every gate has its own SQLite store (a temp dir), its own StoreWriter thread and its own MqttSync
(client id = gate id) with a WhitelistApplier trusting an Ed25519 admin key made for the run. Its
"camera" is an event generator (R events/s, jittered): each event is submitted to the gate's writer as
`store.record_event` (event row + outbox row in one transaction; its commit wakes the sync's drainer),
exactly what the lane does. Gates are spread over worker processes (one generator thread each);
the parent process runs the broker (unless --broker), the collector (a QoS 1 subscriber to the
events, alarms, acks and $SYS topics) and the admin, which publishes a signed delta to every
community every D seconds. After S seconds the generators stop, the workers wait (bounded) for their
outboxes to drain, and the report says what was generated, delivered, lost and duplicated, the
end-to-end latency (event time to collector receive), the acks per gate and what it cost.
Exit status 1 if an event was lost or an ack is missing, 2 if the run itself failed.

Modules: `gate_worker` (the simulated gates of one worker process), `admin` (the signed deltas),
`collector` (the broker-side subscriber), `verify` (what was lost, duplicated, acked), `report` (the
text report and the broker's figures), `run` (the command line and the run that ties them together).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`scripts/fleet.py --gates N --rate R --seconds S [...]`: parse, run, exit code (see `run.main`)."""
    from edge.tools.fleet.run import main as run_main

    return run_main(argv)
