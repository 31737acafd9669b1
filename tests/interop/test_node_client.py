"""A client written in Node.js from docs/protocol.md alone (tests/interop/admin-client.mjs, by someone who
never read this project's Python) against the gate's real MQTT side on a real broker: its first
signed delta (with `care_watch_hours: 1e-7`, as JSON.stringify writes it) is applied and acked, its
status-only patch too, and it verifies the gate's signed acks and state with the gate's key."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.broker import Mosquitto

HERE = Path(__file__).parent
MODEL = "sface_2021dec"


def _node() -> str:
    node = shutil.which("node")
    assert node is not None, "node is needed for the interop checks (scripts/test installs it)"
    assert (HERE / "node_modules" / "mqtt").is_dir(), "run scripts/test (it runs npm ci in tests/interop)"
    return node


def test_node_client_from_the_docs_gets_its_first_delta_and_patch_applied(tmp_path: Path) -> None:
    admin, gate_key = AdminKey.generate(), SigningKey.generate()
    admin.save(tmp_path / "admin.pem")
    (tmp_path / "gates.json").write_text(json.dumps({"gates": [{"gate_id": "north-1",
                                                                 "public_key": gate_key.public_text}]}))
    with Mosquitto(tmp_path / "broker") as broker, Store.open(tmp_path / "gate.sqlite") as store:
        cfg = MqttConfig(enabled=True, url=broker.url, reconnect_min_s=0.1, state_interval_s=30,
                         admin_public_keys=[admin.public_text])
        wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community="maple", gate_id="north-1")

        def state() -> dict[str, Any]:
            return {"whitelist": {"version": wl.version, "persons": store.count_persons(),
                                  "templates": store.count_templates(MODEL), "model": MODEL,
                                  "need_snapshot": wl.ask.needed, "member_gates": len(wl.members)}}
        sync = MqttSync(cfg, store, gate_id="north-1", community="maple", whitelist=wl, state=state, key=gate_key)
        sync.start()
        try:
            assert sync.wait_connected(30)
            run = subprocess.run([_node(), str(HERE / "admin-client.mjs"), "--broker", broker.url, "--prefix",
                                  "edge-gate", "--community", "maple", "--gate", "north-1", "--key",
                                  str(tmp_path / "admin.pem"), "--gates", str(tmp_path / "gates.json"),
                                  "--model-id", MODEL, "--version", "1", "--timeout", "60"],
                                 capture_output=True, text=True, timeout=120)
        finally:
            sync.stop()
        steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        assert run.returncode == 0, run.stdout + run.stderr
        assert steps[-1] == {"ok": True}
        person = store.get_person("NODE1")
        assert person is not None and person.status == "suspended" and person.care_watch_hours == 1e-7
        assert person.name == "Node Client 节点" and store.count_templates(MODEL) == 1 and wl.version == 2


@pytest.mark.parametrize("flag", [["--check-vectors"]])
def test_node_client_checks_its_canonical_form_against_the_vectors(flag: list[str]) -> None:
    run = subprocess.run([_node(), str(HERE / "admin-client.mjs"), *flag], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout.splitlines()[-1])["ok"] is True
