"""`gate guard add NAME --role viewer|operator`, `gate guard list`, `gate guard disable|enable NAME`:
the guards' accounts in the local store. There is no default password; passwords are argon2 hashes."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any


def _store(args: argparse.Namespace) -> Any:
    from edge.config import load_config
    from edge.enroll import store_path
    from edge.store import Store

    cfg = load_config(args.config)
    if args.data_dir:
        cfg.gate.data_dir = Path(args.data_dir).resolve()
    return Store.open(store_path(cfg))


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # getpass would fall back to reading (and echoing) a pipe, or hit EOF
        print(f"no terminal to type the password on: type it at a terminal, or pipe it in with "
              f"--password-stdin (e.g. printf '%s\\n' \"$PW\" | gate guard add {args.name} --password-stdin)",
              file=sys.stderr)
        return None
    else:
        try:
            password = getpass.getpass(f"password for {args.name}: ")
            again = getpass.getpass("again: ")
        except (EOFError, KeyboardInterrupt):
            print("\nno password given: the guard was not added", file=sys.stderr)
            return None
        if again != password:
            print("the passwords differ", file=sys.stderr)
            return None
    from edge.web.auth import MIN_PASSWORD_LENGTH

    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return None
    return password


def cmd_guard_add(args: argparse.Namespace) -> int:
    from edge.store import StoreError

    name = args.name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        print("a guard name is 1-64 characters without spaces", file=sys.stderr)
        return 2
    password = _read_password(args)
    if password is None:
        return 2
    with _store(args) as store:
        try:
            from edge.web.auth import hash_password

            store.add_guard(name, args.role, hash_password(password))
        except StoreError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        store.audit("cli", "guard_add", {"name": name, "role": args.role})
    print(f"guard {name} added ({args.role})")
    return 0


def cmd_guard_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        for g in store.list_guards():
            state = "disabled" if g.disabled else "active"
            print(f"{g.name}\t{g.role}\t{state}\t{g.created_at.isoformat(timespec='seconds')}")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    with _store(args) as store:
        if not store.set_guard_disabled(args.name, disabled):
            print(f"no guard {args.name!r}", file=sys.stderr)
            return 1
        store.audit("cli", "guard_disable" if disabled else "guard_enable", {"name": args.name})
    print(f"guard {args.name} {'disabled' if disabled else 'enabled'}")
    return 0


def cmd_guard_disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


def cmd_guard_enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)


def add_commands(sub: Any) -> None:
    """Add `guard ...` to the `gate` command's subparsers (`sub` from `add_subparsers`)."""
    guard = sub.add_parser("guard", help="the guards' web page accounts")
    guard_sub = guard.add_subparsers(dest="guard_command", required=True)

    def common(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
        sp.add_argument("--data-dir", help="override [gate] data_dir")
        return sp

    add = common(guard_sub.add_parser("add", help="add a guard (asks for the password twice)"))
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "operator"],
                     help="viewer: sees everything; operator: may also open the gate by hand")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    add.set_defaults(func=cmd_guard_add)
    lst = common(guard_sub.add_parser("list", help="list guards"))
    lst.set_defaults(func=cmd_guard_list)
    disable = common(guard_sub.add_parser("disable", help="disable a guard (their sessions end)"))
    disable.add_argument("name")
    disable.set_defaults(func=cmd_guard_disable)
    enable = common(guard_sub.add_parser("enable", help="enable a disabled guard"))
    enable.add_argument("name")
    enable.set_defaults(func=cmd_guard_enable)
