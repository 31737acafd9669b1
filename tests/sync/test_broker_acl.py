"""The shipped broker access control (config/mosquitto/) on a real Mosquitto: the shipped
`edge-gate.conf` with its two paths pointed at the repository's ACL file and at a password file made by
`mosquitto_passwd`. A gate's credentials publish only under its own gate id and never a whitelist push;
admins and the hub push; each gate reads the community's pushes, its own per-gate pushes and its peers'
passages, nothing else; a real gate and the real admin tool work under it.

"Never arrived" is shown with a sentinel: the forbidden messages go first, then one that is allowed;
once the sentinel is in, anything the broker had let through would be in too (one broker, one
subscriber connection, each publish acknowledged before the next is sent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.paths import REPO
from sync_helpers import COMMUNITY, GATE_KEY, MODEL, Subscriber, embedding, gate_cli, gates_file, wait_until

from edge.config.mqtt import MqttConfig
from edge.protocol.signing import AdminKey, public_key_text
from edge.protocol.topics import Topics
from edge.store import Store
from edge.sync.mqtt import MqttSync
from edge.sync.whitelist import WhitelistApplier
from edge.tools.bench.drain import fill_outbox
from edge.tools.broker import Mosquitto, make_password_file

CONF = REPO / "config" / "mosquitto" / "edge-gate.conf"
ACL = REPO / "config" / "mosquitto" / "acl"
INSTALLED = "/etc/mosquitto/edge-gate/"  # where docs/broker.md installs the two files
USERS = {"admin": "admin-Pw-1", "hub": "hub-Pw-1", "gate-a": "gate-a-Pw-1", "gate-b": "gate-b-Pw-1"}
A = Topics("edge-gate", COMMUNITY, "gate-a")
B = Topics("edge-gate", COMMUNITY, "gate-b")
COMMUNITY_PUSH = [f"{A.community_base}/whitelist/{k}" for k in ("snapshot", "delta", "current")]
NOT_AUTHORIZED = 0x87


def shipped_config(passwords: Path) -> list[str]:
    """The settings of the shipped edge-gate.conf, its file paths pointed at this test's files."""
    text = CONF.read_text(encoding="utf-8")
    assert f"{INSTALLED}acl" in text and f"{INSTALLED}passwd" in text
    text = text.replace(f"{INSTALLED}acl", str(ACL)).replace(f"{INSTALLED}passwd", str(passwords))
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """The runner's own lines (listener on a free port, no persistence) and then the shipped settings;
    the shipped `allow_anonymous false` comes last and wins (test_anonymous_... shows it does)."""
    passwords = make_password_file(tmp_path / "passwd", USERS)
    broker = Mosquitto(tmp_path / "broker", extra_config=shipped_config(passwords))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def connack(port: int, username: str | None, password: str | None) -> int:
    """The broker's CONNACK reason code for these credentials (0: accepted)."""
    got: list[int] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{username}", protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        got.append(rc.value)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert done.wait(30), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def publish_as(port: int, user: str, topic: str, payload: bytes | str = b"x", retain: bool = False) -> int:
    """Publish one QoS 1 message with `user`'s credentials on a connection of its own (Mosquitto closes
    the connection after refusing a publish); the PUBACK's reason code (0: accepted)."""
    got: list[int] = []
    acked = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-pub", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, USERS[user])

    def on_publish(c: mqtt.Client, u: Any, mid: int, rc: Any, props: Any) -> None:
        got.append(rc.value)
        acked.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain)
        assert acked.wait(30), f"no PUBACK for {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def received(sub: Subscriber) -> list[str]:
    with sub.lock:
        return [t for t, _, _ in sub.messages]


def test_anonymous_clients_and_wrong_passwords_are_refused(acl_broker: Mosquitto) -> None:
    assert connack(acl_broker.port, None, None) == NOT_AUTHORIZED  # allow_anonymous false applies
    assert connack(acl_broker.port, "gate-a", "wrong") == NOT_AUTHORIZED  # Mosquitto says the same for
    assert connack(acl_broker.port, "gate-z", USERS["gate-a"]) == NOT_AUTHORIZED  # both, and for no such user
    assert connack(acl_broker.port, "gate-a", USERS["gate-a"]) == 0


def test_a_gate_publishes_only_its_own_topics(acl_broker: Mosquitto) -> None:
    admin = Subscriber(acl_broker.port, ["edge-gate/#"], client_id="admin-watch", username="admin",
                       password=USERS["admin"])
    try:
        own = [A.available, A.state, A.events, A.alarms, A.whitelist_ack]
        forbidden = [B.available, B.state, B.events, B.alarms, B.whitelist_ack,  # gate B's topics
                     *COMMUNITY_PUSH,  # the community's whitelist pushes and pointer
                     *A.whitelist_push[2:], *B.whitelist_push[2:],  # per-gate pushes, even its own
                     "edge-gate/other-community/gate-b/events", "$SYS/broker/forged", "elsewhere/x"]
        for topic in own:
            assert publish_as(acl_broker.port, "gate-a", topic, b"own") == 0, topic
        refused = {topic: publish_as(acl_broker.port, "gate-a", topic, b"forged", retain=True) for topic in forbidden}
        sentinel = A.events
        assert publish_as(acl_broker.port, "gate-a", sentinel, b"sentinel") == 0
        wait_until(lambda: (A.events, b"sentinel", False) in admin.messages, 30, "the sentinel")
        assert received(admin) == [*own, sentinel]  # not one forged message arrived
        assert refused == dict.fromkeys(forbidden, NOT_AUTHORIZED)  # and the broker said so (MQTT v5)
    finally:
        admin.close()
    late = Subscriber(acl_broker.port, ["edge-gate/#"], client_id="admin-late", username="admin",
                      password=USERS["admin"])
    try:  # nothing forged was kept as a retained message either: the retained sentinel below is alone
        assert publish_as(acl_broker.port, "gate-a", A.state, b"retained-sentinel", retain=True) == 0
        wait_until(lambda: b"retained-sentinel" in [p for _, p, _ in late.messages], 30, "the retained sentinel")
        assert received(late) == [A.state]
    finally:
        late.close()


def test_admins_and_the_hub_push_and_each_gate_reads_what_it_needs(acl_broker: Mosquitto) -> None:
    gate_subs = {name: Topics("edge-gate", COMMUNITY, name) for name in ("gate-a", "gate-b")}
    gates = {name: Subscriber(acl_broker.port, [*t.whitelist_push, t.whitelist_current, t.peer_events],
                              client_id=f"{name}-reads", username=name, password=USERS[name])
             for name, t in gate_subs.items()}
    # gate A also asks for what it must not read: B's per-gate pushes, B's state, alarms and acks
    nosy = Subscriber(acl_broker.port, [*B.whitelist_push[2:], B.state, B.alarms, B.whitelist_ack, "edge-gate/#"],
                      client_id="gate-a-nosy", username="gate-a", password=USERS["gate-a"])
    # the hub reads the passages and acks through a shared subscription (several hubs share the load)
    hub = Subscriber(acl_broker.port, [f"$share/hubs/{A.community_base}/+/events",
                                       f"$share/hubs/{A.community_base}/+/whitelist/ack"],
                     client_id="hub-1", username="hub", password=USERS["hub"])
    try:
        assert all(rc < 0x80 for g in gates.values() for rc in g.granted)  # a gate's own subscriptions
        pushes = [("admin", f"{A.community_base}/whitelist/delta"), ("hub", f"{A.community_base}/whitelist/snapshot"),
                  ("admin", A.whitelist_current), ("hub", A.whitelist_push[3]), ("admin", B.whitelist_push[3]),
                  ("admin", B.whitelist_push[2])]
        for user, topic in pushes:
            assert publish_as(acl_broker.port, user, topic, f"{user} push".encode()) == 0, (user, topic)
        for gate in ("gate-b", "gate-a"):  # B's state, alarms and ack, then the sentinel: A's passage
            t = gate_subs[gate]
            for topic in ([t.state, t.alarms, t.whitelist_ack] if gate == "gate-b" else []) + [t.events]:
                assert publish_as(acl_broker.port, gate, topic, b"gate") == 0
        for sub in (*gates.values(), nosy, hub):
            wait_until(lambda s=sub: A.events in received(s), 30, "the sentinel passage")  # type: ignore[misc]
        community = [f"{A.community_base}/whitelist/delta", f"{A.community_base}/whitelist/snapshot",
                     A.whitelist_current]
        assert received(gates["gate-a"]) == [*community, A.whitelist_push[3], B.events, A.events]
        assert received(gates["gate-b"]) == [*community, B.whitelist_push[3], B.whitelist_push[2], B.events, A.events]
        # whatever gate A subscribes to, it gets the community's pushes and passages only
        assert received(nosy) == [*community, A.whitelist_push[3], B.events, A.events]
        assert received(hub) == [B.whitelist_ack, B.events, A.events]
    finally:
        for sub in (*gates.values(), nosy, hub):
            sub.close()


def test_a_real_gate_and_the_admin_tool_work_under_the_shipped_acl(
        tmp_path: Path, acl_broker: Mosquitto, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's own connection (user = gate id): state and `online` out; the real `gate admin push` as
    `admin` (a retained community delta, then waiting for the ack on `+/whitelist/ack`); the gate applies
    and acks it; no refused subscription or publish on either side."""
    admin_key = AdminKey.generate()
    admin_key.save(tmp_path / "admin.pem")
    cfg = MqttConfig(enabled=True, url=acl_broker.url, username="gate-a", reconnect_min_s=0.1,
                     admin_public_keys=[public_key_text(admin_key.public)])
    wl = WhitelistApplier(store, None, MODEL, cfg.trusted_keys(), community=COMMUNITY, gate_id="gate-a")
    sync = MqttSync(cfg, store, gate_id="gate-a", community=COMMUNITY, whitelist=wl, password=USERS["gate-a"],
                    key=GATE_KEY)
    admin = Subscriber(acl_broker.port, ["edge-gate/#"], client_id="admin-watch", username="admin",
                       password=USERS["admin"])
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps([{"id": "R1", "name": "Tom", "allowed_gates": ["gate-a"],
                                    "embeddings": [embedding(1).tolist()], "model_id": MODEL}]))
    monkeypatch.setenv("ADMIN_MQTT_PASSWORD", USERS["admin"])
    sync.start()
    try:
        wait_until(lambda: A.available in received(admin) and A.state in received(admin), 30, "the gate online")
        proc = gate_cli("admin", "push", "--broker", acl_broker.url, "--community", COMMUNITY, "--username", "admin",
                        "--password-env", "ADMIN_MQTT_PASSWORD", "--key", str(tmp_path / "admin.pem"),
                        "--delta", str(persons), "--version", "1", "--acks", "1", "--timeout", "60",
                        "--gates", str(gates_file(tmp_path / "gates.json", {"gate-a": GATE_KEY})))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["status"] == "applied"
        person = store.get_person("R1")
        assert person is not None and person.allowed_gates == ("gate-a",)
        assert admin.on(A.available)[0] == b"online" and admin.json_on(A.whitelist_ack)[-1]["status"] == "applied"
        health = sync.health()
        assert health["connected"] and health["failed"] == 0 and health["last_error"] is None, health
    finally:
        sync.stop()
        admin.close()


def test_a_gate_with_the_wrong_user_name_publishes_nothing_and_loses_nothing(acl_broker: Mosquitto,
                                                                               store: Store) -> None:
    """Gate A logging in as gate-b (a config mistake): the broker refuses its publishes and closes the
    connection, again on every reconnect; nothing reaches the admin, every event stays in A's outbox and
    goes out once A logs in as itself."""
    ids = fill_outbox(store, 20, gate_id="gate-a")
    admin = Subscriber(acl_broker.port, ["edge-gate/#"], client_id="admin-watch", username="admin",
                       password=USERS["admin"])
    wrong = MqttConfig(enabled=True, url=acl_broker.url, username="gate-b", reconnect_min_s=0.1, reconnect_max_s=0.2)
    sync = MqttSync(wrong, store, gate_id="gate-a", community=COMMUNITY, password=USERS["gate-b"])
    sync.start()
    try:
        wait_until(lambda: sync.health()["connects"] >= 3, 60, "several refused sessions")
    finally:
        sync.stop()
    assert store.outbox_depth() == 20 and not sync.health()["connected"]
    assert publish_as(acl_broker.port, "gate-b", B.state, b"sentinel") == 0
    wait_until(lambda: B.state in received(admin), 30, "the sentinel")
    assert received(admin) == [B.state]  # not one of A's messages (state, online, events) got through
    right = MqttConfig(enabled=True, url=acl_broker.url, username="gate-a", reconnect_min_s=0.1)
    sync = MqttSync(right, store, gate_id="gate-a", community=COMMUNITY, password=USERS["gate-a"])
    sync.start()
    try:
        wait_until(lambda: store.outbox_depth() == 0, 60, "the outbox to drain as gate-a")
        wait_until(lambda: len(admin.on(A.events)) >= 20, 30, "the events at the admin")
    finally:
        sync.stop()
        admin.close()
    assert {json.loads(p)["event_id"] for p in admin.on(A.events)} == set(ids)
