"""`gate ha ...`: Home Assistant MQTT discovery (edge.sync.ha_discovery). `purge` removes the gate's
device from Home Assistant: it publishes an empty retained message on every discovery config topic
(the button's included) and on the `ha/...` state topics, with the gate's own [mqtt] settings, as
client `{gate}-ha-purge` (so a running gate is not disconnected). `show` prints the configs the gate
publishes (the button's secret masked)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TYPE_CHECKING, Any

from edge.cli.common import load, with_config

if TYPE_CHECKING:
    from edge.config import GateConfig
    from edge.sync.ha_discovery import HaTopics

TIMEOUT_S = 15.0


def _names(args: argparse.Namespace) -> tuple[GateConfig, HaTopics]:
    from edge.protocol.topics import Topics
    from edge.sync.ha_discovery import HaTopics

    cfg = load(args)
    return cfg, HaTopics(Topics(cfg.mqtt.topic_prefix, cfg.gate.community, cfg.gate.id),
                         cfg.homeassistant.discovery_prefix)


def cmd_show(args: argparse.Namespace) -> int:
    from edge.sync.ha_discovery import discovery_configs

    cfg, names = _names(args)
    ha = cfg.homeassistant
    configs = discovery_configs(names, alarm_hold_s=ha.alarm_hold_s,
                                button_secret="<button_secret>" if ha.button_enabled else None)
    print(json.dumps({t: json.loads(p) if p else None for t, p in configs.items()}, indent=2, ensure_ascii=False))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from edge.config.mqtt import SecretError
    from edge.sync.client import failed, make_client

    cfg, names = _names(args)
    mqtt = cfg.mqtt
    try:
        password = mqtt.password()
        client = make_client(mqtt, f"{cfg.gate.id}-ha-purge", password=password)
    except (SecretError, OSError, ValueError) as exc:
        print(f"gate ha purge: {exc}; check [mqtt] in the config", file=sys.stderr)
        return 2
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if failed(rc):
            refused.append(str(rc))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=30)
    except (OSError, ValueError) as exc:
        print(f"gate ha purge: cannot connect to {mqtt.url}: {exc}; is the broker up and [mqtt] url right?",
              file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT_S) or refused:
            why = refused[0] if refused else f"no CONNACK within {TIMEOUT_S:g} s"
            print(f"gate ha purge: {mqtt.url} refused the connection ({why}); check [mqtt] username and "
                  "password_secret", file=sys.stderr)
            return 1
        topics = names.config_topics() + names.state_topics()
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        try:
            for info in infos:
                info.wait_for_publish(TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:  # the connection went away
            print(f"gate ha purge: lost {mqtt.url} while removing ({exc}); run it again", file=sys.stderr)
            return 1
        if not all(info.is_published() for info in infos):
            print(f"gate ha purge: the broker did not acknowledge every removal within {TIMEOUT_S:g} s; "
                  "run it again", file=sys.stderr)
            return 1
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"removed {len(names.config_topics())} discovery configs and {len(names.state_topics())} state topics "
          f"of gate {cfg.gate.id} (node {names.node_id}); a gate with [homeassistant] enabled publishes them "
          "again when it connects: turn it off first")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `ha show` and `ha purge` to the `gate` parser's subcommands."""
    ha = sub.add_parser("ha", help="Home Assistant MQTT discovery: show the configs, remove the gate from it")
    hs = ha.add_subparsers(dest="ha_command", required=True)
    show = with_config(hs.add_parser("show", help="print the discovery configs the gate publishes"))
    show.set_defaults(func=cmd_show)
    purge = with_config(hs.add_parser("purge", help="publish empty retained configs so the gate's entities "
                                      "disappear from Home Assistant"))
    purge.set_defaults(func=cmd_purge)
