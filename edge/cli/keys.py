"""`gate keys ...`: the gate's own signing key (edge.sync.identity). `init` makes it (mode 0600, never
over an existing key); `show` prints the public key and key id to register with the community admin."""

from __future__ import annotations

import argparse
import json
import sys

from edge.cli.common import load, with_config


def _identity(args: argparse.Namespace, create: bool) -> int:
    from edge.filemodes import private_dir
    from edge.sync.identity import GateKeyError, key_path, load_identity

    cfg = load(args)
    path, _credential = key_path(cfg.mqtt.gate_key_file, cfg.gate.data_dir)
    if create and path.exists():
        print(f"gate keys init: {path} exists; refusing to replace the gate's identity (move it away first "
              "to make a new one, then register the new key with the admin)", file=sys.stderr)
        return 1
    try:
        if create and path.parent == cfg.gate.data_dir:
            private_dir(cfg.gate.data_dir)  # 0700, or tightened (a warning)
        identity = load_identity(cfg.mqtt.gate_key_file, cfg.gate.data_dir, create=create)
    except OSError as exc:
        print(f"gate keys init: cannot make the data dir {cfg.gate.data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except GateKeyError as exc:
        print(f"gate keys {'init' if create else 'show'}: {exc}", file=sys.stderr)
        return 2
    member = {"gate_id": cfg.gate.id, "public_key": identity.key.public_text}
    if args.json:
        print(json.dumps({**member, "key_id": identity.key.key_id, "path": str(identity.path)}))
    else:
        print(identity.key.public_text)
        print(f"gate {cfg.gate.id}, key id {identity.key.key_id}, private key {identity.path}"
              f"{' (new)' if identity.created else ''}; add to the admin's gates file: {json.dumps(member)}",
              file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    return _identity(args, create=True)


def cmd_show(args: argparse.Namespace) -> int:
    return _identity(args, create=False)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="the gate's own signing key: make it, show its public key")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    for name, fn, text in (("init", cmd_init, "make the gate's key (mode 0600; refuses to replace one)"),
                           ("show", cmd_show, "print the gate's public key and key id for the admin")):
        p = with_config(ksub.add_parser(name, help=text))
        p.add_argument("--json", action="store_true", help="one JSON object: gate_id, public_key, key_id, path")
        p.set_defaults(func=fn)
