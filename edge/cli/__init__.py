"""The `gate` command: one entry point for the daemon, installers, admins and our checks.

One module per command group, each with `add_commands(subparsers)`; each command is a small function
returning an exit code. Heavy imports (OpenCV, onnxruntime, device libraries, the web server) happen
inside the commands, so `gate --help` and `gate config ...` stay fast on a small device (a test keeps it so).

File modes: every command runs under umask 077, so what it writes (the store, keys, backups, photos) is
its user's only, whatever the caller's umask (edge.filemodes, docs/security.md). The commands that write
files for everyone (model files, schema docs, benchmark reports) say so with `shared_output=True` and
keep the caller's umask.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from edge import __version__
from edge.cli import admin, bench, calibrate, config, deploy, guard, ha, hub, keys, run, vision
from edge.filemodes import private_umask

log = logging.getLogger("edge.cli")


# The drivers' command groups load every driver's config (pydantic, numpy) to offer their choices: they
# are built only when the command line asks for one of them; otherwise a placeholder lists them.
DRIVER_GROUPS = {"drivers": "talk to the gate's hardware: thermal sensors, relays",
                 "sim": "run a device simulator on a pseudo-terminal (prints its path)"}


def _command(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `gate` parser; `argv` (default: sys.argv[1:]) decides whether the drivers' groups are built."""
    p = argparse.ArgumentParser(prog="gate", description="edge-gate: contactless residential gate")
    p.add_argument("--version", action="version", version=f"edge-gate {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (config, vision, run, bench):
        group.add_commands(sub)
    if _command(sys.argv[1:] if argv is None else argv) in DRIVER_GROUPS:
        from drivers.cli import add_commands as add_driver_commands

        add_driver_commands(sub)
    else:
        for name, text in DRIVER_GROUPS.items():
            sub.add_parser(name, help=text)
    for group in (admin, guard, keys, hub, ha, deploy, calibrate):
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from edge.config import ConfigError
    from edge.models import ModelError

    caller_umask = private_umask()  # the file-mode policy: what a command writes is its user's only
    if getattr(args, "shared_output", False):  # model files, schema docs, reports: as the caller's umask says
        os.umask(caller_umask)
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
    finally:
        os.umask(caller_umask)  # for a caller in the same process (the tests)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
