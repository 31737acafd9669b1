"""`gate config show|check|example`: the effective config, a file checked line by line, the example."""

from __future__ import annotations

import argparse
import json
import sys

from edge.cli.common import load, with_config


def cmd_config_show(args: argparse.Namespace) -> int:
    from edge.config import config_as_dict, to_toml

    cfg = load(args)
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
    from edge.config import ConfigError, load_config

    try:
        load_config(args.file)
    except ConfigError as exc:
        print(f"{args.file}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {args.file}: {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
