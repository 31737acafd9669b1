"""`gate admin events --follow` and `gate admin acks`, run as real subprocesses against a real Mosquitto
while a real MqttSync drains its outbox and answers pushes."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sync_helpers import (
    COMMUNITY,
    GATE,
    GATE_KEY,
    MODEL,
    CliWatch,
    Subscriber,
    delta,
    entry,
    gate_cli,
    gates_file,
    wait_until,
)

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, SigningKey, public_key_text
from edge.protocol.topics import Topics
from edge.store import AlarmRecord, Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto

TOPICS = Topics("edge-gate", COMMUNITY, GATE)


@pytest.fixture
def admin() -> AdminKey:
    return AdminKey.generate()


@pytest.fixture
def gate(broker: Mosquitto, store: Store, admin: AdminKey) -> Iterator[tuple[MqttSync, WhitelistApplier]]:
    cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(admin.public)])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    yield sync, wl
    sync.stop()


def _verdicts(stdout: str) -> list[tuple[str, bool]]:
    """(gate level of the topic, verified) of each line `gate admin acks --gates` printed."""
    return sorted((m["topic"].split("/")[2], m["verified"]) for m in map(json.loads, stdout.splitlines()))


def cli(broker: Mosquitto, command: str, *args: str) -> list[str]:
    return ["admin", command, "--broker", broker.url, "--community", COMMUNITY, *args]


def test_events_follow_prints_events_and_alarms_until_count(broker: Mosquitto, store: Store,
                                                            gate: tuple[MqttSync, WhitelistApplier]) -> None:
    sync, _ = gate
    counted = CliWatch(*cli(broker, "events", "--follow", "--count", "6"))
    endless = CliWatch(*cli(broker, "events", "--follow"))
    try:
        counted.wait_watching()
        endless.wait_watching()
        ids = fill_outbox(store, 5, gate_id=GATE)
        store.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="fever", severity="high", message="38.4 C",
                                       gate_id=GATE))
        more = fill_outbox(store, 3, gate_id=GATE)  # past the count: the counted watcher has exited by then
        sync.start()
        assert counted.finish(30) == 0, "\n".join(counted.err)
        got = counted.messages()
        assert len(got) == 6 and [m["topic"] for m in got] == [TOPICS.events] * 5 + [TOPICS.alarms]
        assert [m["payload"]["event_id"] for m in got[:5]] == ids and got[5]["payload"]["kind"] == "fever"
        wait_until(lambda: len(endless.out) == 9, 10, "every message at the endless watcher")
        assert [m["payload"].get("event_id") for m in endless.messages()] == [*ids, None, *more]
        assert endless.proc.poll() is None  # --follow without --count keeps going
        endless.proc.send_signal(signal.SIGINT)  # Ctrl-C ends it cleanly
        assert endless.finish(10) == 0 and "Traceback" not in "\n".join(endless.err)
    finally:
        counted.kill()
        endless.kill()


def test_events_without_follow_stops_after_the_timeout(broker: Mosquitto) -> None:
    done = gate_cli(*cli(broker, "events", "--timeout", "1"), timeout=60)
    assert done.returncode == 0 and done.stdout == ""
    short = gate_cli(*cli(broker, "events", "--timeout", "1", "--count", "1"), timeout=60)
    assert short.returncode == 1 and "only 0 of 1" in short.stderr


def test_acks_prints_the_retained_acks_and_follows_new_ones(broker: Mosquitto, admin: AdminKey, tmp_path: Path,
                                                            gate: tuple[MqttSync, WhitelistApplier]) -> None:
    sync, wl = gate
    sync.start()
    assert sync.wait_connected(10)
    admin_side = Subscriber(broker.port, [TOPICS.whitelist_ack], client_id="pusher")
    try:
        admin_side.publish(f"edge-gate/{COMMUNITY}/whitelist/delta", delta(admin, 1, [entry("R1", 1)], base=0))
        wait_until(lambda: wl.version == 1 and admin_side.on(TOPICS.whitelist_ack), 10, "the first ack")

        retained = gate_cli(*cli(broker, "acks", "--timeout", "1"), timeout=60)
        assert retained.returncode == 0, retained.stderr
        lines = [json.loads(line) for line in retained.stdout.splitlines()]
        assert [(m["topic"], m["payload"]["status"], m["payload"]["version"]) for m in lines] == [
            (TOPICS.whitelist_ack, "applied", 1)]  # the gate's last ack, retained
        # with the gates file each line says whether the gate's key signed it; a forger's copy is false
        forged = {**lines[0]["payload"], "signature": SigningKey.generate().sign(lines[0]["payload"])["signature"]}
        admin_side.publish(f"edge-gate/{COMMUNITY}/{GATE}/whitelist/ack", json.dumps(forged), retain=True)
        admin_side.publish(f"edge-gate/{COMMUNITY}/gate-z/whitelist/ack", json.dumps(lines[0]["payload"]), retain=True)
        wait_until(lambda: len(admin_side.on(TOPICS.whitelist_ack)) >= 2, 10, "the forged ack")
        gates = gates_file(tmp_path / "gates.json")
        checked = gate_cli(*cli(broker, "acks", "--timeout", "1", "--gates", str(gates)), timeout=60)
        verdicts = _verdicts(checked.stdout)
        assert verdicts == [(GATE, False), ("gate-z", False)], checked.stdout  # forged; a gate not in the file
        admin_side.publish(f"edge-gate/{COMMUNITY}/{GATE}/whitelist/ack", json.dumps(lines[0]["payload"]), retain=True)
        wait_until(lambda: len(admin_side.on(TOPICS.whitelist_ack)) >= 3, 10, "the genuine ack again")
        checked = gate_cli(*cli(broker, "acks", "--timeout", "1", "--gates", str(gates)), timeout=60)
        verdicts = _verdicts(checked.stdout)
        assert verdicts == [(GATE, True), ("gate-z", False)], checked.stdout
        bad = gate_cli(*cli(broker, "acks", "--timeout", "1", "--gates", str(tmp_path / "missing.json")), timeout=60)
        assert bad.returncode == 2 and "--gates" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        admin_side.publish(f"edge-gate/{COMMUNITY}/gate-z/whitelist/ack", b"", retain=True)  # cleared again

        follow = CliWatch(*cli(broker, "acks", "--follow", "--count", "2"))
        try:
            follow.wait_watching()
            wait_until(lambda: len(follow.out) == 1, 10, "the retained ack")
            admin_side.publish(f"edge-gate/{COMMUNITY}/whitelist/delta", delta(admin, 1, [entry("R9", 9)], base=0))
            assert follow.finish(30) == 0, "\n".join(follow.err)
            acks = [m["payload"] for m in follow.messages()]
            assert [(a["status"], a["code"], a["version"]) for a in acks] == [("applied", "ok", 1),
                                                                             ("rejected", "old_version", 1)]
        finally:
            follow.kill()
    finally:
        admin_side.close()
