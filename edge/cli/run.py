"""`gate run|demo|events`: the daemon, the demo gate, and the decisions it recorded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.common import load, with_config


def _print_outcome(outcome: object) -> None:
    from edge.lane import Outcome

    assert isinstance(outcome, Outcome)
    ev = outcome.event
    who = f"{outcome.name} ({ev.person_id})" if ev.person_id else "unknown face"
    reasons = ", ".join(str(r["code"]) for r in ev.reasons if r.get("effect") != "allow") or "ok"
    temp = ev.temperature or {}
    t = f"{temp['body_c']:.1f} C" if temp.get("body_c") is not None and temp.get("valid") else "no temperature"
    lat = f"{outcome.latency_ms:.0f} ms" if outcome.latency_ms is not None else "-"
    alarms = " ALARM " + ",".join(str(a["kind"]) for a in ev.alarms) if ev.alarms else ""
    print(f"{ev.ts.astimezone().strftime('%H:%M:%S')} {ev.decision.upper():5s} {who:40s} {t:15s} "
          f"[{reasons}] {lat}{alarms}", flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from edge.config.mqtt import SecretError
    from edge.gate import Gate
    from edge.sync.identity import GateKeyError

    cfg = load(args)
    try:
        gate = Gate(cfg, on_outcome=_print_outcome if not args.quiet else None)
    except (GateKeyError, SecretError) as exc:  # the gate's key, the broker password, the HA button secret
        print(f"gate run: {exc}", file=sys.stderr)
        return 2
    return gate.run(seconds=args.seconds)


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo_scene import add_demo_guard, prepare_demo
    from edge.gate import Gate

    if args.community:
        from edge.community_demo import run as run_community

        return run_community(args.seconds)
    if args.config is None:
        args.config = str(Path(__file__).resolve().parents[2] / "config" / "demo.toml")
    cfg = load(args)
    if cfg.camera.type != "folder":
        print("the demo needs a config whose camera is an image folder (config/demo.toml)", file=sys.stderr)
        return 2
    if args.mqtt:
        keys = [Path(args.admin_pubkey).read_text().strip()] if args.admin_pubkey else []
        cfg.mqtt = cfg.mqtt.model_copy(update={"enabled": True, "url": args.mqtt, "admin_public_keys": keys})
        cfg.mqtt.model_validate(cfg.mqtt.model_dump())  # the same checks as a config file gets
    visits = prepare_demo(cfg, Path(cfg.camera.source))
    print(f"demo: {len(visits)} arrivals replayed at {cfg.camera.fps:g} fps from {cfg.camera.source}; "
          f"data in {cfg.gate.data_dir}; Ctrl-C to stop", flush=True)
    for v in visits:
        print(f"  frames {v.first_frame:3d}-{v.last_frame:3d}: {v.label}{' (fever)' if v.fever else ''}")
    if cfg.web.enabled:
        password = add_demo_guard(cfg)
        host = "127.0.0.1" if cfg.web.host in ("0.0.0.0", "::") else cfg.web.host
        print(f"guards' page: http://{host}:{cfg.web.port}/  (sign in as demo / {password}, an operator "
              "account that lives as long as this demo data)", flush=True)
    return Gate(cfg, on_outcome=_print_outcome).run(seconds=args.seconds)


def cmd_events(args: argparse.Namespace) -> int:
    from edge.enroll import store_path
    from edge.store import Store
    from edge.time_input import TimeInputError, gate_zone, optional_time

    cfg = load(args)
    try:
        since = optional_time(args.since, "--since", gate_zone(cfg.policy.timezone))
    except TimeInputError as exc:
        print(f"gate events: {exc}", file=sys.stderr)
        return 2
    if not store_path(cfg).is_file():
        print(f"gate events: no store at {store_path(cfg)} (check --data-dir or [gate] data_dir)", file=sys.stderr)
        return 2
    left = args.limit if args.limit > 0 else None  # 0: every event, read a page at a time
    with Store.open(store_path(cfg)) as store:
        offset = 0
        while left is None or left > 0:
            page = store.events(since=since, limit=min(1000, left or 1000), offset=offset)
            for ev in page:
                if args.json:
                    print(json.dumps(ev.to_dict(), ensure_ascii=False))
                else:
                    reasons = ",".join(str(r.get("code")) for r in ev.reasons)
                    print(f"{ev.ts.isoformat()} {ev.decision:5s} {ev.person_id or '-':12s} {reasons}")
            offset += len(page)
            left = None if left is None else left - len(page)
            if len(page) < 1000:
                break
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = with_config(sub.add_parser("run", help="run the gate (camera, vision, sensor, relay, store)"))
    run.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until SIGTERM)")
    run.add_argument("--quiet", action="store_true", help="do not print decisions")
    run.set_defaults(func=cmd_run)

    demo = with_config(sub.add_parser("demo", help="prepare the demo data and run the demo gate"))
    demo.add_argument("--seconds", type=float, default=None)
    demo.add_argument("--mqtt", help="connect the demo gate to this broker (mqtt://host:port)")
    demo.add_argument("--admin-pubkey", help="file with an admin public key (from `gate admin keygen`)")
    demo.add_argument("--community", action="store_true", help="the community demo: a broker, the hub and two "
                      "gates (entry, exit) with empty whitelists that learn everyone from the hub; data in "
                      ".demo/community/")
    demo.set_defaults(func=cmd_demo)

    events = with_config(sub.add_parser("events", help="list recorded events (oldest first)"))
    events.add_argument("--since", help="ISO-8601 time (local time if no offset)")
    events.add_argument("--limit", type=int, default=0, help="at most this many (default 0: all)")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(func=cmd_events)
