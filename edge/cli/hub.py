"""`gate hub ...`: the community hub (edge.hub): `init`, `run`, the register's persons and gates, and
`status` (per gate, the version it acknowledged). Every command takes `--config hub.toml`; a bad
config, file or argument is one line and exit 2. Heavy imports (paho, the face engine) happen inside."""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.hub.config import HubConfig
    from edge.hub.db import HubDatabase
    from edge.hub.register import Register

ACTOR = "hub-cli"


class _Fail(Exception):
    """One line for stderr, exit 2."""


def _config(args: argparse.Namespace) -> HubConfig:
    from edge.hub.config import HubConfigError, load_hub_config

    if args.config:
        path = Path(args.config)
    elif args.data_dir:
        path = Path(args.data_dir) / "hub.toml"
    else:
        raise _Fail("give --config hub.toml (or --data-dir DIR, the hub's directory holding hub.toml)")
    try:
        return load_hub_config(path)
    except HubConfigError as exc:
        raise _Fail(str(exc)) from exc


def _db(cfg: HubConfig) -> HubDatabase:
    from edge.hub.db import HubDatabase, HubDbError

    try:
        return HubDatabase.open(cfg.database_url)
    except HubDbError as exc:
        raise _Fail(str(exc)) from exc


def _register(args: argparse.Namespace) -> Register:
    from edge.hub.register import Register

    return Register(_db(_config(args)))


def _admin_key(cfg: HubConfig, create: bool) -> Any:
    from edge.protocol.signing import SigningKey

    path = cfg.admin_key_path()
    if not path.exists():
        if not create:
            raise _Fail(f"no admin key at {path}; run `gate hub init --config ...` first")
        key = SigningKey.generate()
        key.save(path)
        return key
    try:
        return SigningKey.load(path)
    except (OSError, ValueError) as exc:
        raise _Fail(f"admin key {path}: {' '.join(str(exc).split())}") from exc


def cmd_init(args: argparse.Namespace) -> int:
    from edge.filemodes import private_dir

    cfg = _config(args)
    try:
        private_dir(cfg.hub.data_dir, "hub data dir")  # 0700, or tightened (a warning)
    except OSError as exc:
        raise _Fail(f"cannot make the hub's data dir {cfg.hub.data_dir}: {exc.strerror or exc}") from exc
    db = _db(cfg)
    key = _admin_key(cfg, create=True)
    print(key.public_text)
    print(f"hub for {cfg.hub.community}: database {db.kind} {db.where}, admin key {cfg.admin_key_path()}; put "
          "the line above in each gate's [mqtt] admin_public_keys", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge.hub.service import Hub

    cfg = _config(args)
    db = _db(cfg)
    hub = Hub(cfg, db, _admin_key(cfg, create=False))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = _start_page(cfg, db) if cfg.hub.web_port >= 0 else None
    try:
        hub.run(stop)
    finally:
        if server is not None:
            server.should_exit = True
    return 0


def _start_page(cfg: HubConfig, db: HubDatabase) -> Any:
    """The admin page on its own thread (uvicorn); prints its URL."""
    import logging
    import time

    import uvicorn

    from edge.hub.photos import HubFaces
    from edge.hub.web import HubWeb, create_hub_app

    faces = HubFaces()
    keep = (lambda pid, photo: keep_photo(cfg, pid, photo)) if cfg.hub.keep_photos else None
    app = create_hub_app(HubWeb(db, faces.embed, language=cfg.hub.web_language, keep_photo=keep))
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.hub.web_host, port=cfg.hub.web_port, log_level="warning",
                                           access_log=False, server_header=False, proxy_headers=False))
    threading.Thread(target=server.run, name="hub-web", daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = next((s.getsockname()[1] for srv in getattr(server, "servers", []) for s in srv.sockets), cfg.hub.web_port)
    logging.getLogger("edge.hub").info("hub page on http://%s:%s/", cfg.hub.web_host, port)
    return server


def cmd_account(args: argparse.Namespace) -> int:
    import os

    from edge.hub.web import add_account, disable_account

    db = _db(_config(args))
    if args.disable:
        if not disable_account(db, args.name):
            raise _Fail(f"no account {args.name}")
        print(f"account {args.name} disabled (its sessions end at once)", file=sys.stderr)
        return 0
    password = os.environ.get(args.password_env or "", "")
    if not password:
        raise _Fail("give the password in an environment variable: --password-env NAME "
                    f"({args.password_env or 'unset'} is empty)")
    try:
        add_account(db, args.name, args.role, password)
    except ValueError as exc:
        raise _Fail(str(exc)) from exc
    print(f"account {args.name} ({args.role}) ready", file=sys.stderr)
    return 0


_FACES: list[Any] = []  # the CLI process's one HubFaces (an import embeds many photos with one engine)


def _templates(photo: bytes, what: str) -> dict[str, Any]:
    """Templates from a face photo, by the hub's own face engine (the photo is not kept)."""
    from edge.hub.photos import HubFaces

    if not _FACES:
        _FACES.append(HubFaces())
    try:
        return dict(_FACES[0].templates(photo, what))
    except ValueError as exc:
        raise _Fail(f"photo {' '.join(str(exc).split())}") from exc


def _embed_photo(path: Path) -> dict[str, Any]:
    try:
        photo = path.read_bytes()
    except OSError as exc:
        raise _Fail(f"photo {path}: {exc.strerror or exc}") from exc
    return _templates(photo, str(path))


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("name", "kind", "status", "unit", "valid_from", "valid_until", "max_uses", "care_watch_hours",
                 "card"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    if getattr(args, "no_card", False):
        out["card"] = None
    return out


def _card(text: str) -> int:
    """A `--card` value: a whole number in the protocol's range (argparse prints the one-line error)."""
    if not text.isdigit() or int(text) > 4294967295:
        raise argparse.ArgumentTypeError(f"{text!r} is not a card number (a whole number 0..4294967295)")
    return int(text)


def cmd_person_add(args: argparse.Namespace) -> int:
    cfg = _config(args)
    reg = _register(args)
    entry: dict[str, Any] = {"id": args.id, **_fields(args)}
    if args.photo:
        entry["templates"] = _embed_photo(Path(args.photo))
    version = _change(lambda: reg.upsert([entry], ACTOR))
    if args.group:
        _change(lambda: _groups(reg, args.id, args.group))
    if args.photo and cfg.hub.keep_photos:
        keep_photo(cfg, args.id, Path(args.photo).read_bytes())
    print(f"person {args.id}: version {version}", file=sys.stderr)
    return 0


def keep_photo(cfg: HubConfig, person_id: str, photo: bytes) -> None:
    """With [hub] keep_photos: the enrolment photo in {data_dir}/photos/<id>.jpg, mode 0600."""
    import os

    folder = cfg.hub.data_dir / "photos"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / f"{person_id}.jpg", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(photo)


def cmd_person_update(args: argparse.Namespace) -> int:
    reg = _register(args)
    fields = _fields(args)
    if args.command_name in ("suspend", "activate", "block"):
        fields["status"] = {"suspend": "suspended", "activate": "active", "block": "blocked"}[args.command_name]
    version = _change(lambda: reg.patch(args.id, fields, ACTOR))
    print(f"person {args.id}: {', '.join(sorted(fields))} changed, version {version}", file=sys.stderr)
    return 0


def cmd_person_delete(args: argparse.Namespace) -> int:
    cfg = _config(args)
    reg = _register(args)
    version = _change(lambda: reg.delete(args.ids, ACTOR))
    for pid in args.ids:  # biometric data goes with the person
        (cfg.hub.data_dir / "photos" / f"{pid}.jpg").unlink(missing_ok=True)
    print(f"deleted {len(args.ids)}: version {version}", file=sys.stderr)
    return 0


def cmd_person_import(args: argparse.Namespace) -> int:
    from edge.admin.person_file import PersonFileError, read_person_file

    cfg = _config(args)
    reg = _register(args)
    try:
        upserts, deletes = read_person_file(Path(args.file), args.model_id)
    except PersonFileError as exc:
        raise _Fail(str(exc)) from exc
    for entry in upserts:
        if entry.get("photo_jpeg"):  # checked base64 by the person file reader; never written to disk
            entry["templates"] = _templates(base64.b64decode(entry.pop("photo_jpeg")), f"the photo of {entry['id']}")
    batch = cfg.hub.import_batch
    versions = [_change(lambda part=upserts[i:i + batch]: reg.upsert(part, ACTOR))
                for i in range(0, len(upserts), batch)]
    if deletes:
        versions.append(_change(lambda: reg.delete(deletes, ACTOR)))
    print(f"imported {len(upserts)} persons, {len(deletes)} deletes: versions {versions[0] if versions else '-'}"
          f"..{versions[-1] if versions else '-'}", file=sys.stderr)
    return 0


def cmd_person_list(args: argparse.Namespace) -> int:
    reg = _register(args)
    for p in reg.persons(group=args.group):
        print(json.dumps({k: v for k, v in p.items() if k != "templates"} | {
            "templates": len((p.get("templates") or {}).get("embeddings", [])), "groups": reg.groups(p["id"])},
            ensure_ascii=False))
    return 0


def _groups(reg: Register, person_id: str, groups: list[str]) -> int:
    reg.set_groups(person_id, groups, ACTOR)
    return reg.version


def cmd_person_groups(args: argparse.Namespace) -> int:
    reg = _register(args)
    _change(lambda: _groups(reg, args.id, args.group or []))
    print(f"person {args.id}: groups {', '.join(reg.groups(args.id)) or '-'}", file=sys.stderr)
    return 0


def cmd_gate_add(args: argparse.Namespace) -> int:
    reg = _register(args)
    version = _change(lambda: reg.set_gate(args.gate_id, args.public_key, ACTOR))
    print(f"gate {args.gate_id}: version {version} (every gate gets the member list with it)", file=sys.stderr)
    return 0


def cmd_gate_import(args: argparse.Namespace) -> int:
    from edge.admin.gates import GatesFileError, read_gates_file

    reg = _register(args)
    try:
        gates = read_gates_file(Path(args.file))
    except GatesFileError as exc:
        raise _Fail(str(exc)) from exc
    for g in gates:
        _change(lambda g=g: reg.set_gate(g["gate_id"], g["public_key"], ACTOR))
    print(f"{len(gates)} gates: version {reg.version}", file=sys.stderr)
    return 0


def cmd_gate_remove(args: argparse.Namespace) -> int:
    reg = _register(args)
    version = _change(lambda: reg.remove_gate(args.gate_id, ACTOR))
    print(f"gate {args.gate_id} removed: version {version}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from edge.hub.service import Hub
    from edge.protocol.signing import SigningKey

    cfg = _config(args)
    hub = Hub(cfg, _db(cfg), SigningKey.generate())  # reads only: no key needed
    print(json.dumps({"community": cfg.hub.community, "version": hub.register.version, "gates": hub.gate_status()},
                     ensure_ascii=False))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from edge.hub.queries import events
    from edge.time_input import TimeInputError, optional_time, system_zone

    try:
        since = optional_time(args.since, "--since", system_zone())
    except TimeInputError as exc:
        raise _Fail(str(exc)) from exc
    cfg = _config(args)
    for ev in events(_db(cfg), gate=args.gate, person=args.person, since=since, limit=args.limit):
        if args.json:
            print(json.dumps(ev, ensure_ascii=False))
        else:
            reasons = ",".join(r.get("code", "?") for r in ev.get("reasons", []))
            print(f"{ev['ts']} {ev['gate_id']:12s} {ev['decision']:5s} {ev.get('person_id') or '-':12s} {reasons}")
    return 0


def cmd_alarms(args: argparse.Namespace) -> int:
    from edge.hub.watch import Watch

    watch = Watch(_db(_config(args)))
    if args.ack:
        if not watch.acknowledge(args.ack, args.by):
            raise _Fail(f"no open hub alarm {args.ack}")
        print(f"alarm {args.ack} acknowledged by {args.by}", file=sys.stderr)
        return 0
    for alarm in watch.alarms(open_only=args.open):
        print(json.dumps(alarm, ensure_ascii=False))
    return 0


def _change(fn: Any) -> int:
    from edge.hub.db import HubDbError
    from edge.hub.register import RegisterError

    try:
        return int(fn())
    except (RegisterError, HubDbError) as exc:
        raise _Fail(str(exc)) from exc


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except _Fail as exc:
            print(f"gate hub: {exc}", file=sys.stderr)
            return 2
    return run


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hub = sub.add_parser("hub", help="the community hub: register, signed deltas and snapshots, acks, archive")
    hsub = hub.add_subparsers(dest="hub_command", required=True)

    def cmd(parent: Any, name: str, fn: Any, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=text)
        p.add_argument("--config", "-c", help="hub.toml")
        p.add_argument("--data-dir", help="instead of --config: the hub's directory holding hub.toml")
        p.set_defaults(func=_guarded(fn), command_name=name)
        return p

    cmd(hsub, "init", cmd_init, "make the database and the admin key; print the key for the gates")
    cmd(hsub, "run", cmd_run, "run the hub (systemd: edge-gate-hub.service)")
    acc = cmd(hsub, "account", cmd_account, "an account of the admin page (argon2; roles admin, office)")
    acc.add_argument("name")
    acc.add_argument("--role", choices=("admin", "office"), default="office")
    acc.add_argument("--password-env", help="environment variable holding the password (10+ characters)")
    acc.add_argument("--disable", action="store_true", help="disable the account; its sessions end at once")
    cmd(hsub, "status", cmd_status, "the gate board: availability, last state, version acked, last event")
    ev = cmd(hsub, "events", cmd_events, "the archived events of every gate")
    ev.add_argument("--gate")
    ev.add_argument("--person")
    ev.add_argument("--since", help="ISO-8601 (local time when no offset)")
    ev.add_argument("--limit", type=int, default=1000)
    ev.add_argument("--json", action="store_true", help="one event per line, as the gate signed it")
    al = cmd(hsub, "alarms", cmd_alarms, "the hub's own alarms (care watch, silent gates)")
    al.add_argument("--open", action="store_true", help="only the unacknowledged ones")
    al.add_argument("--ack", metavar="ID", help="acknowledge this alarm (for the whole community)")
    al.add_argument("--by", default="office", help="who acknowledges (audited)")
    person = hsub.add_parser("person", help="residents, visitors and staff").add_subparsers(dest="p", required=True)

    def fields(p: argparse.ArgumentParser, name_required: bool) -> None:
        p.add_argument("--name", required=name_required)
        p.add_argument("--kind", choices=("resident", "visitor", "staff"))
        p.add_argument("--status", choices=("active", "suspended", "blocked"))
        p.add_argument("--unit")
        p.add_argument("--valid-from", dest="valid_from", help="ISO-8601 with offset")
        p.add_argument("--valid-until", dest="valid_until", help="ISO-8601 with offset")
        p.add_argument("--max-uses", dest="max_uses", type=int)
        p.add_argument("--care-watch-hours", dest="care_watch_hours", type=float)
        p.add_argument("--card", type=_card, help="card number sent to an access panel on a grant (0..4294967295)")

    add = cmd(person, "add", cmd_person_add, "add or replace a person (templates from --photo)")
    add.add_argument("--id", required=True)
    fields(add, True)
    add.add_argument("--photo", help="face photo: the hub makes templates and does not keep the photo "
                     "(unless [hub] keep_photos)")
    add.add_argument("--group", action="append", help="a group or building of the register (repeatable)")
    for name, text in (("update", "change some fields"), ("suspend", "suspend"), ("activate", "re-activate"),
                       ("block", "block (an alarm when seen)")):
        p = cmd(person, name, cmd_person_update, text)
        p.add_argument("id")
        if name == "update":
            fields(p, False)
            p.add_argument("--no-card", dest="no_card", action="store_true", help="remove the person's card")
    rm = cmd(person, "delete", cmd_person_delete, "delete persons and their templates")
    rm.add_argument("ids", nargs="+")
    imp = cmd(person, "import", cmd_person_import, "a CSV/JSON person file (docs/person-files.md)")
    imp.add_argument("file")
    imp.add_argument("--model-id", help="model of embeddings given without one")
    ls = cmd(person, "list", cmd_person_list, "the register (JSON lines, template counts only)")
    ls.add_argument("--group", help="only the members of this group or building")
    gp = cmd(person, "groups", cmd_person_groups, "set a person's groups and buildings (the hub's own)")
    gp.add_argument("id")
    gp.add_argument("--group", action="append", help="repeatable; none: no groups")
    gate = hsub.add_parser("gate", help="the community's gates and their keys").add_subparsers(dest="g", required=True)
    ga = cmd(gate, "add", cmd_gate_add, "add a gate (or give it a new key)")
    ga.add_argument("gate_id")
    ga.add_argument("public_key", help="ed25519:... (`gate keys show` on the gate)")
    gi = cmd(gate, "import", cmd_gate_import, "gates from a gates file (docs/protocol.md)")
    gi.add_argument("file")
    gr = cmd(gate, "remove", cmd_gate_remove, "remove a gate (its events are no longer accepted)")
    gr.add_argument("gate_id")
