"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` into a directory, `pg_ctl` on a free
port on 127.0.0.1 (trust authentication, no network beyond loopback), stopped and removed after. As
root the server runs as the `postgres` user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from edge.tools.broker import free_port


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<major>/bin (newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    if not dirs:
        raise PostgresError("PostgreSQL is not installed: sudo apt-get install -y postgresql")
    return Path(dirs[-1])


class Postgres:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = 0
        self._bin = bin_dir()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise PostgresError(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as:  # the server's own user must reach its directory: let others pass through the parents
            for parent in self.root.resolve().parents:
                mode = parent.stat().st_mode
                if parent != Path("/") and not mode & 0o001:
                    parent.chmod((mode & 0o7777) | 0o011)
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self._bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync", "-E", "UTF8", "--locale=C")
        self.port = self.port or free_port()  # a restart keeps its port (clients reconnect to it)
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "120", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
