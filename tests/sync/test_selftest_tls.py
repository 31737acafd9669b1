"""`gate selftest`'s broker check connects with the gate's own client builder: over mutual TLS it passes,
and it honours `tls_min_version` (a server offering only TLS 1.2 fails a config demanding 1.3, naming
TLS, while a config allowing 1.2 completes the handshake with that very server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import GATE, wait_until
from tls_helpers import Pki, make_ca, make_pki, tls12_only_server

from edge.config.mqtt import MqttConfig
from edge.selftest import Limits, check_broker
from edge.tools.broker import Mosquitto

LIMITS = Limits(broker_timeout_s=10.0)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", client_cn=GATE)


def tls_config(url: str, pki: Pki, **over: object) -> MqttConfig:
    return MqttConfig.model_validate({"enabled": True, "url": url, "tls_ca_file": pki.ca,
                                      "tls_cert_file": pki.client_cert, "tls_key_file": pki.client_key, **over})


def test_the_broker_check_passes_over_mutual_tls_and_names_an_untrusted_ca(tmp_path: Path, pki: Pki) -> None:
    with Mosquitto(tmp_path / "broker", extra_config=pki.listener(require_certificate=True)) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        ok = check_broker(tls_config(url, pki, tls_min_version="1.3"), "selftest-tls", LIMITS)
        assert ok.ok, ok.detail
        other_ca, _key, _cert = make_ca(tmp_path / "other", "other")
        bad = check_broker(tls_config(url, pki, tls_ca_file=other_ca), "selftest-tls-ca", LIMITS)
        assert not bad.ok and "TLS" in bad.detail and "not trusted" in bad.detail and "tls_ca_file" in bad.detail


@pytest.fixture
def tls12_server(pki: Pki) -> Iterator[tuple[int, list[str]]]:
    handshakes: list[str] = []
    stop = threading.Event()
    port = tls12_only_server(pki, handshakes, stop)
    try:
        yield port, handshakes
    finally:
        stop.set()


def test_the_broker_check_refuses_a_server_below_tls_min_version(pki: Pki, tls12_server: tuple[int, list[str]]) -> None:
    port, handshakes = tls12_server
    url = f"mqtts://127.0.0.1:{port}"
    demanding = check_broker(tls_config(url, pki, tls_min_version="1.3"), "selftest-13", LIMITS)
    wait_until(lambda: len(handshakes) >= 1, 10, "the server to see the attempt")
    assert not demanding.ok and "TLS" in demanding.detail and "tls_min_version is 1.3" in demanding.detail
    assert handshakes[0].startswith("error"), handshakes  # no TLS 1.2 session was made

    lenient = check_broker(tls_config(url, pki, tls_min_version="1.2"), "selftest-12", LIMITS)
    wait_until(lambda: len(handshakes) >= 2, 10, "the second attempt")
    assert handshakes[1] == "TLSv1.2", handshakes  # the same server is fine at 1.2 (it just speaks no MQTT)
    assert not lenient.ok and "TLS handshake" not in lenient.detail


def test_unreadable_tls_files_are_one_clear_failure(tmp_path: Path, pki: Pki) -> None:
    cfg = tls_config("mqtts://127.0.0.1:1", pki, tls_ca_file=tmp_path / "missing-ca.pem")
    result = check_broker(cfg, "selftest-files", LIMITS)
    assert not result.ok and "tls_ca_file" in result.detail
