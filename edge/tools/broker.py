"""The local Mosquitto runner the tests, the drain benchmark and the fleet run use: `Mosquitto(workdir)`
starts `mosquitto` on a free loopback port (`free_port`), can stop and start it again on that port.
`make_password_file` writes a Mosquitto password file with `mosquitto_passwd` (as docs/broker.md does).

The outbox drain benchmark itself is `edge.tools.bench.drain`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file (hashed, mode 0600) holding exactly these user names and passwords,
    made by `mosquitto_passwd -b` one user at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run([shutil.which("mosquitto_passwd") or MOSQUITTO_PASSWD, "-b", str(path), user, password],
                       check=True, capture_output=True)
    return path


class Mosquitto:
    """A mosquitto process on 127.0.0.1 (anonymous, no persistence unless asked); can be stopped and
    started again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None, *, persistence: bool = False,
                 users: dict[str, str] | None = None, extra_config: Sequence[str] = (),
                 binary: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.persistence = persistence
        self.users = users  # None: anonymous access; else only these user names and passwords
        self.extra_config = list(extra_config)  # more mosquitto.conf lines, e.g. an acl_file
        self.binary = binary or shutil.which("mosquitto") or MOSQUITTO
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", f"allow_anonymous {'true' if self.users is None else 'false'}",
                 f"persistence {'true' if self.persistence else 'false'}",
                 "max_queued_messages 0", "max_inflight_messages 0", "log_dest stderr",
                 "log_type error", "log_type warning"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot read a private workdir
        if self.persistence:
            lines += [f"persistence_location {self.workdir}/", "autosave_interval 0"]
        if self.users is not None:
            pw = make_password_file(self.workdir / "passwords", self.users)
            lines.append(f"password_file {pw}")
        lines += self.extra_config
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("mosquitto is running already")
        conf = self._write_config()
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its ACL and password files."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("mosquitto is not running")
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM: a persistent broker saves its sessions and queues)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
