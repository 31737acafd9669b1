"""The `gate` command: one entry point for the daemon, installers, admins and our checks.

One module per command group, each with `add_commands(subparsers)`; each command is a small function
returning an exit code. Heavy imports (OpenCV, onnxruntime, device libraries, the web server) happen
inside the commands, so `gate --help` and `gate config ...` stay fast on a small device (a test keeps it so).
"""

from __future__ import annotations

import argparse
import logging
import sys

from edge import __version__
from edge.cli import admin, bench, config, deploy, guard, run, vision
from edge.config import ConfigError

log = logging.getLogger("edge.cli")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gate", description="edge-gate: contactless residential gate")
    p.add_argument("--version", action="version", version=f"edge-gate {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    from drivers.cli import add_commands as add_driver_commands

    for group in (config, vision, run, bench):
        group.add_commands(sub)
    add_driver_commands(sub)
    for group in (admin, guard, deploy):
        group.add_commands(sub)
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
