"""The deployment subcommands of `gate`: selftest, backup, restore (added to the parser by edge.cli)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def cmd_selftest(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.selftest import Limits, format_table, run_selftest, to_json

    cfg = load_config(args.config)
    results = run_selftest(cfg, Limits(thermal_timeout_s=args.timeout, camera_timeout_s=args.timeout,
                                       relay_timeout_s=args.timeout, broker_timeout_s=args.timeout))
    print(to_json(results) if args.json else format_table(results))
    return 0 if all(r.ok for r in results) else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.enroll import store_path
    from edge.store.backup import BackupError, backup

    cfg = load_config(args.config)
    try:
        info = backup(store_path(cfg), Path(args.file))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"{info.path}: {info.bytes} bytes, schema {info.schema_version}, {info.events} events, integrity ok")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.enroll import store_path
    from edge.store.backup import BackupError, restore

    cfg = load_config(args.config)
    db = store_path(cfg)
    try:
        info = restore(db, Path(args.file))
    except BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"{db}: restored from {args.file} ({info.events} events); the previous store is {db}.bak")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `selftest`, `backup` and `restore` to the `gate` parser's subcommands."""
    st = sub.add_parser("selftest", help="check models, camera, sensor, relay, broker, clock, disk, file modes "
                        "and store (run it with the service stopped: it opens the devices itself)")
    st.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
    st.add_argument("--json", action="store_true", help="one JSON object: ok and the checks")
    st.add_argument("--timeout", type=float, default=10.0, help="seconds each device may take to answer")
    st.set_defaults(func=cmd_selftest)

    bk = sub.add_parser("backup", help="copy the store to FILE (SQLite online backup; safe while the gate runs)")
    bk.add_argument("file", metavar="FILE")
    bk.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
    bk.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="replace the store by a backup FILE (checked first; the old store "
                        "is kept as gate.db.bak; the gate must be stopped)")
    rs.add_argument("file", metavar="FILE")
    rs.add_argument("--config", "-c", help="config file (TOML); default: built-in defaults")
    rs.set_defaults(func=cmd_restore)
