"""TLS against a real Mosquitto with a throwaway PKI made at test time: the gate's MqttSync and the admin
CLI connect with mqtts://, the private CA, a client certificate (the broker requires one) and TLS 1.3 as
the minimum; a wrong CA, a missing client certificate and a server below the minimum version are
refused with a clear logged error and the gate is never marked connected."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import COMMUNITY, GATE, GATE_KEY, MODEL, CliWatch, embedding, gate_cli, gates_file, wait_until
from tls_helpers import Pki, make_ca, make_pki, tls12_only_server

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, public_key_text
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", client_cn=GATE)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker", extra_config=pki.listener(require_certificate=True)) as broker:
        yield broker


def mqtts(broker: Mosquitto) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"


def gate_config(url: str, ca: Path, pki: Pki | None, **over: object) -> MqttConfig:
    return MqttConfig.model_validate({
        "enabled": True, "url": url, "tls_ca_file": ca, "reconnect_min_s": 0.1, "reconnect_max_s": 0.3,
        **({"tls_cert_file": pki.client_cert, "tls_key_file": pki.client_key} if pki else {}), **over})


def test_gate_and_admin_cli_over_mutual_tls(tmp_path: Path, pki: Pki, tls_broker: Mosquitto, store: Store) -> None:
    url = mqtts(tls_broker)
    tls_args = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
                "--tls-min-version", "1.3"]
    admin = AdminKey.generate()
    admin.save(tmp_path / "admin.pem")
    cfg = gate_config(url, pki.ca, pki, tls_min_version="1.3", admin_public_keys=[public_key_text(admin.public)])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id=GATE)
    sync = MqttSync(cfg, store, gate_id=GATE, community=COMMUNITY, whitelist=wl, key=GATE_KEY)
    watch = CliWatch("admin", "events", "--broker", url, "--community", COMMUNITY, "--follow", "--count", "5",
                     *tls_args)
    try:
        watch.wait_watching()
        ids = fill_outbox(store, 5, gate_id=GATE)
        sync.start()
        assert sync.wait_connected(10), sync.health()["last_error"]
        assert watch.finish(30) == 0, "\n".join(watch.err)
        assert [m["payload"]["event_id"] for m in watch.messages()] == ids  # over TLS, in order
        wait_until(lambda: store.outbox_depth() == 0, 10, "the PUBACKs")

        persons = tmp_path / "persons.json"
        persons.write_text(json.dumps({"persons": [{"id": "R1", "name": "TLS Resident", "model_id": MODEL,
                                                    "embeddings": [embedding(1).tolist()]}]}))
        done = gate_cli("admin", "push", "--broker", url, "--community", COMMUNITY,
                        "--key", str(tmp_path / "admin.pem"), "--delta", str(persons), "--version", "1",
                        "--base-version", "0", "--acks", "1", "--gates", str(gates_file(tmp_path / "gates.json")),
                        "--timeout", "20", *tls_args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["status"] == "applied" and wl.version == 1
        health = sync.health()
        assert health["connected"] and health["connects"] == 1 and health["last_error"] is None
    finally:
        watch.kill()
        sync.stop()


def test_wrong_ca_is_refused_with_a_clear_error(tmp_path: Path, pki: Pki, tls_broker: Mosquitto, store: Store,
                                               caplog: pytest.LogCaptureFixture) -> None:
    other_ca, _key, _cert = make_ca(tmp_path / "other", "other")
    sync = MqttSync(gate_config(mqtts(tls_broker), other_ca, pki), store, gate_id=GATE, community=COMMUNITY)
    with caplog.at_level(logging.ERROR, logger="edge.sync"):
        sync.start()
        try:
            wait_until(lambda: len([r for r in caplog.records if "not trusted" in r.getMessage()]) >= 2, 10,
                       "two refused attempts")
            health = sync.health()
            assert not sync.connected and not health["connected"] and health["connects"] == 0
        finally:
            sync.stop()
    message = next(r.getMessage() for r in caplog.records if "not trusted" in r.getMessage())
    assert "TLS handshake" in message and "tls_ca_file" in message and mqtts(tls_broker) in message
    assert "not trusted" in (health["last_error"] or "")

    for ca_args in (["--tls-ca", str(other_ca)], []):  # a wrong CA, or the system's CAs for a private one
        done = gate_cli("admin", "acks", "--broker", mqtts(tls_broker), "--community", COMMUNITY, "--timeout", "2",
                        "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key), *ca_args)
        assert done.returncode == 2 and "not trusted" in done.stderr and "--tls-ca" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_a_gate_without_the_required_client_certificate_is_not_connected(
        pki: Pki, tls_broker: Mosquitto, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    sync = MqttSync(gate_config(mqtts(tls_broker), pki.ca, None), store, gate_id=GATE, community=COMMUNITY)
    with caplog.at_level(logging.ERROR, logger="edge.sync"):
        sync.start()
        try:
            wait_until(lambda: sum("CONNACK" in r.getMessage() for r in caplog.records) >= 2, 10, "refused attempts")
            assert not sync.connected and sync.health()["connects"] == 0
        finally:
            sync.stop()
    assert any("before its CONNACK" in r.getMessage() and "tls_cert_file" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("minimum", ["1.3", "1.2"])
def test_the_minimum_tls_version_is_enforced(pki: Pki, store: Store, caplog: pytest.LogCaptureFixture,
                                             minimum: str) -> None:
    handshakes: list[str] = []
    stop = threading.Event()
    port = tls12_only_server(pki, handshakes, stop)
    sync = MqttSync(gate_config(f"mqtts://127.0.0.1:{port}", pki.ca, pki, tls_min_version=minimum), store,
                    gate_id=GATE, community=COMMUNITY)
    with caplog.at_level(logging.ERROR, logger="edge.sync"):
        sync.start()
        try:
            # a third attempt comes only after the gate gave up on the second
            wait_until(lambda: len(handshakes) >= 3, 20, "three connection attempts")
            assert not sync.connected and sync.health()["connects"] == 0
        finally:
            sync.stop()
            stop.set()
    if minimum == "1.3":  # the gate refuses to go below its minimum: no handshake completes
        assert all(h.startswith("error") for h in handshakes), handshakes
        assert any("MQTT TLS with" in r.getMessage() for r in caplog.records)
    else:  # the same server is fine for a gate that allows 1.2 (it just speaks no MQTT)
        assert "TLSv1.2" in handshakes, handshakes
