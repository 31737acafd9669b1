"""The `gate` command: one entry point for the daemon, installers, admins and our checks.

Each subcommand is a small function returning an exit code; heavy imports happen inside them so
`gate --help` and `gate config check` stay fast on a small device.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edge import __version__
from edge.config import ConfigError, GateConfig, config_as_dict, load_config, to_toml

log = logging.getLogger("edge.cli")


def _load(args: argparse.Namespace) -> GateConfig:
    cfg = load_config(getattr(args, "config", None))
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        cfg.gate.data_dir = Path(data_dir).resolve()
    return cfg


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if args.json:
        print(json.dumps(config_as_dict(cfg), indent=2))
    else:
        print(to_toml(cfg), end="")
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    from edge.config import example_toml

    print(example_toml(), end="")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as exc:
        print(f"{args.file}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {args.file}: {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from edge.models import fetch_all

    cfg = _load(args)
    for line in fetch_all(cfg.vision.models_dir, names=args.model or None, source=args.source,
                          samples=args.samples):
        print(line)
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from edge.models import load_manifest, verify

    cfg = _load(args)
    manifest = load_manifest(cfg.vision.models_dir / "manifest.toml")
    bad = 0
    for spec in manifest.models.values():
        problem = verify(cfg.vision.models_dir / spec.file, spec.sha256)
        print(f"{spec.name}: {problem or 'ok'}")
        bad += problem is not None
    return 1 if bad else 0


def cmd_faces(args: argparse.Namespace) -> int:
    from edge.vision import FaceEngine, ImageError, load_image

    engine = FaceEngine(_load(args).vision)
    status = 0
    for path in args.images:
        try:
            faces = engine.analyze(load_image(path))
        except ImageError as exc:
            print(json.dumps({"image": path, "error": str(exc)}) if args.json else f"{path}: error: {exc}")
            status = 2
            continue
        if args.json:
            print(json.dumps({"image": path, "faces": [f.to_json() for f in faces]}))
        else:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                q = f.quality
                verdict = "ok" if q is None or q.ok else ",".join(q.reasons)
                print(f"  bbox={tuple(round(v) for v in f.bbox)} score={f.score:.3f} quality={verdict}")
    return status


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.enroll import enroll_images

    cfg = _load(args)
    result = enroll_images(cfg, args.id, args.name, args.images, kind=args.kind, unit=args.unit,  # choices= checks kind
                           require_quality=not args.force)
    for line in result.messages:
        print(line)
    if result.templates == 0:
        print(f"no usable face for {args.id}; nothing enrolled", file=sys.stderr)
        return 1
    print(f"enrolled {args.id} ({args.name}) with {result.templates} template(s) [{result.model_id}]")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from edge.enroll import identify_image
    from edge.vision import ImageError

    cfg = _load(args)
    try:
        result = identify_image(cfg, args.image)
    except ImageError as exc:
        print(json.dumps({"image": args.image, "error": str(exc)}) if args.json else f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        who = result["person_id"] or "unknown"
        print(f"{args.image}: {who} (score {result['score']:.3f}, margin {result['margin']:.3f}, "
              f"{result['decision']}: {result['reason']})")
    return 0


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
    from edge.gate import Gate

    cfg = _load(args)
    gate = Gate(cfg, on_outcome=_print_outcome if not args.quiet else None)
    return gate.run(seconds=args.seconds)


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo_scene import add_demo_guard, prepare_demo
    from edge.gate import Gate

    if args.config is None:
        args.config = str(Path(__file__).resolve().parent.parent / "config" / "demo.toml")
    cfg = _load(args)
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
    from datetime import datetime

    from edge.enroll import store_path
    from edge.store import Store

    cfg = _load(args)
    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        print(f"gate events: --since {args.since!r} is not an ISO-8601 time (e.g. 2026-12-01T08:00)", file=sys.stderr)
        return 2
    if since is not None and since.tzinfo is None:
        since = since.astimezone()
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


def cmd_bench(args: argparse.Namespace) -> int:
    import runpy

    script = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
    sys.argv = [str(script), args.what, *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gate", description="edge-gate: contactless residential gate")
    p.add_argument("--version", action="version", version=f"edge-gate {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
        sp.add_argument("--data-dir", help="override [gate] data_dir")
        return sp

    cfg = sub.add_parser("config", help="show or check configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    show = with_config(cfg_sub.add_parser("show", help="print the effective config with defaults"))
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)
    example = cfg_sub.add_parser("example", help="print the documented example config (every option)")
    example.set_defaults(func=cmd_config_example)
    check = cfg_sub.add_parser("check", help="validate a config file; errors name their line")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    models = sub.add_parser("models", help="fetch and verify model files")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = with_config(models_sub.add_parser("fetch", help="fetch missing or mismatching models (sha256 verified)"))
    fetch.add_argument("--model", action="append", help="only this manifest model (repeatable)")
    fetch.add_argument("--from", dest="source", help="operator-given local path or URL for one --model")
    fetch.add_argument("--samples", action="store_true", help="also extract the sample photos (tests, demo)")
    fetch.set_defaults(func=cmd_models_fetch)
    verify_p = with_config(models_sub.add_parser("verify", help="check every manifest model's hash"))
    verify_p.set_defaults(func=cmd_models_verify)

    faces = with_config(sub.add_parser("faces", help="detect and embed faces in images"))
    faces.add_argument("images", nargs="+")
    faces.add_argument("--json", action="store_true", help="one JSON object per image")
    faces.set_defaults(func=cmd_faces)

    enroll = with_config(sub.add_parser("enroll", help="enroll a person's face templates into the local store"))
    enroll.add_argument("--id", required=True)
    enroll.add_argument("--name", required=True)
    enroll.add_argument("--kind", default="resident", choices=["resident", "visitor", "staff"])
    enroll.add_argument("--unit", default=None, help="flat or house number")
    enroll.add_argument("--force", action="store_true", help="accept faces that fail the quality gate")
    enroll.add_argument("images", nargs="+")
    enroll.set_defaults(func=cmd_enroll)

    ident = with_config(sub.add_parser("identify", help="name the largest face in an image (1:N)"))
    ident.add_argument("image")
    ident.add_argument("--json", action="store_true")
    ident.set_defaults(func=cmd_identify)

    run = with_config(sub.add_parser("run", help="run the gate (camera, vision, sensor, relay, store)"))
    run.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until SIGTERM)")
    run.add_argument("--quiet", action="store_true", help="do not print decisions")
    run.set_defaults(func=cmd_run)

    demo = with_config(sub.add_parser("demo", help="prepare the demo data and run the demo gate"))
    demo.add_argument("--seconds", type=float, default=None)
    demo.add_argument("--mqtt", help="connect the demo gate to this broker (mqtt://host:port)")
    demo.add_argument("--admin-pubkey", help="file with an admin public key (from `gate admin keygen`)")
    demo.set_defaults(func=cmd_demo)

    events = with_config(sub.add_parser("events", help="list recorded events (oldest first)"))
    events.add_argument("--since", help="ISO-8601 time (local time if no offset)")
    events.add_argument("--limit", type=int, default=0, help="at most this many (default 0: all)")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(func=cmd_events)

    bench = sub.add_parser("bench", help="run a benchmark from scripts/bench.py")
    bench.add_argument("what", choices=["vision", "gallery", "decision", "drain", "snapshot", "all"])
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)

    from drivers.cli import add_commands as add_driver_commands
    from edge.deploy_cli import add_commands as add_deploy_commands
    from edge.sync.admin_cli import add_commands as add_admin_commands
    from edge.web.cli import add_commands as add_guard_commands

    add_driver_commands(sub)
    add_admin_commands(sub)
    add_guard_commands(sub)
    add_deploy_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from edge.models import ModelError

    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"model error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
