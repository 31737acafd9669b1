"""Who may read the files the gate and the hub keep: the umask of the `gate` command, private directories
and files, and what the self-test finds open to other users.

The policy (docs/security.md, "File modes"): the data a gate or a hub keeps (the SQLite store with its
-wal and -shm files, keys, backups, kept photos) is its own user's only: directories 0700, files 0600.
`gate` runs every command that writes such data under umask 077 (`edge.cli.main`); the functions here
make the modes hold for a caller with a looser umask too (a library user, a test, a shell at 022): a
private file is created 0600 before a byte goes into it, and an existing data directory or SQLite file
open to group or others is tightened, with a warning saying what changed.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
OTHERS = stat.S_IRWXG | stat.S_IRWXO  # the bits that must be clear
SQLITE_SIDE_FILES = ("-wal", "-shm")  # SQLite makes them with the database file's mode


def private_umask() -> int:
    """Set the process's umask to 077; returns the one it replaces."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, what: str) -> None:
    """Clear the group/others bits of an existing `path`, with a warning when there were any (also when
    this user may not change them: not its owner). OSError when `path` cannot be looked at."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & OTHERS:
        return
    try:
        path.chmod(mode & ~OTHERS)
    except PermissionError as exc:
        log.warning("%s %s is mode %04o (open to other users) and this user cannot change it (%s): run "
                    "`chmod go= %s` as its owner", what, path, mode, exc.strerror, shlex.quote(str(path)))
        return
    log.warning("%s %s was mode %04o (open to other users); changed to %04o", what, path, mode, mode & ~OTHERS)


def private_dir(path: Path, what: str = "data dir") -> None:
    """Make directory `path` mode 0700 (missing parents as the umask gives), or tighten an existing one
    that group or others may use (warning). OSError when it cannot be made or changed."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    _tighten(path, what)


def create_private(path: Path) -> None:
    """Create the empty file `path` mode 0600 unless it exists (its mode is then left alone). OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode passes through the umask
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write `path` whole (a temporary file beside it, then a rename), mode 0600 whatever the umask."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def prepare_sqlite(path: Path) -> None:
    """Before SQLite opens `path`: its directory private (made, or tightened), the file made 0600 when
    missing, so that SQLite makes its -wal and -shm 0600 too. OSError."""
    private_dir(path.parent)
    create_private(path)


def tighten_sqlite(path: Path) -> None:
    """The SQLite file `path` and its -wal/-shm (those present) to no group/others bits (warning when an
    existing one had some). OSError."""
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        try:
            _tighten(file, "database file")
        except FileNotFoundError:
            continue


def open_to_others(data_dir: Path) -> list[tuple[Path, int]]:
    """`data_dir` and the directories and files under it (symlinks not followed) that group or others may
    use, each with its mode; empty when all is private or `data_dir` does not exist."""
    found: list[tuple[Path, int]] = []
    if not data_dir.is_dir():
        return found
    for root, dirs, files in os.walk(data_dir):  # each directory comes once, as a root
        dirs.sort()
        for path in (Path(root), *(Path(root, name) for name in sorted(files))):
            try:
                st = path.lstat()
            except FileNotFoundError:  # gone meanwhile (a -wal the gate just removed)
                continue
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & OTHERS:
                found.append((path, stat.S_IMODE(st.st_mode)))
    return found


def fix_command(data_dir: Path, found: list[tuple[Path, int]]) -> str:
    """The one `chmod` line that makes what `open_to_others` found private."""
    if len(found) == 1:
        path = found[0][0]
        return f"chmod {'700' if path.is_dir() else '600'} {shlex.quote(str(path))}"
    return f"chmod -R go= {shlex.quote(str(data_dir))}"
