"""Fixtures of the deployment suite: a real, password-protected Mosquitto."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_helpers import Broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto on a free port that accepts only user `gate` with password `s3cret`."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    assert Path(exe).exists() and Path(passwd).exists(), "mosquitto is not installed (.ci/run installs it)"
    pwfile = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(pwfile), "gate", "s3cret"], check=True, capture_output=True)
    pwfile.chmod(0o600)
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
                    "persistence false\n" + ("user root\n" if os.geteuid() == 0 else ""))  # else it drops to
    # `mosquitto`, which cannot read the private tmp dir
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"mosquitto did not start: {err}") from None
            time.sleep(0.05)
    try:
        yield Broker(port, "gate", "s3cret", proc)
    finally:
        proc.terminate()
        proc.wait(5)
