"""sd_notify over a real unix datagram socket, as systemd's manager receives it; and the gate's use of it."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_helpers import sim_config

from edge import sdnotify
from edge.config import load_config
from edge.gate import Gate


def _receive_all(sock: socket.socket) -> list[str]:
    out = []
    sock.settimeout(0.2)
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket standing where systemd's notify socket would be; NOTIFY_SOCKET points at it."""
    path = tmp_path / "notify"
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        path = Path(tempfile.mkdtemp(prefix="sdn")) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def test_messages_arrive_as_datagrams(manager: socket.socket) -> None:
    assert sdnotify.ready()
    assert sdnotify.watchdog()
    assert sdnotify.status("camera ok\nsensor ok")
    assert sdnotify.stopping()
    assert sdnotify.notify("EXTEND_TIMEOUT_USEC=5000000")
    got = _receive_all(manager)
    assert got == [f"READY=1\nMAINPID={os.getpid()}", "WATCHDOG=1", "STATUS=camera ok sensor ok", "STOPPING=1",
                   "EXTEND_TIMEOUT_USEC=5000000"]


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edge-gate-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.watchdog()
        assert _receive_all(sock) == ["WATCHDOG=1"]


def test_without_systemd_nothing_is_sent(manager: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sdnotify.ready() is False
    assert _receive_all(manager) == []


def test_gone_or_odd_socket_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.watchdog() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.ready() is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # inherited from a parent: not for us
    assert sdnotify.watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    for bad in ("", "0", "-5", "soon"):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval_s() is None


def test_gate_run_notifies_ready_watchdog_stopping(manager: socket.socket, tmp_path: Path) -> None:
    """The real gate on simulators: READY=1 once started, WATCHDOG=1 from the supervisor loop while alive,
    STOPPING=1 at shutdown, in that order."""
    gate = Gate(load_config(sim_config(tmp_path)))
    assert gate.run(seconds=3.5) == 0
    got = _receive_all(manager)
    assert got, "the gate sent nothing"
    assert got[0].startswith("READY=1"), got
    assert got[-1] == "STOPPING=1", got
    pings = got[1:-1]
    assert pings and set(pings) == {"WATCHDOG=1"}, got
    assert 2 <= len(pings) <= 4, got  # one per supervision pass (1 s), never from a timer thread


def test_watchdog_withheld_while_a_thread_hangs(manager: socket.socket, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The thermal reader blocks for good inside its loop (as on a wedged USB read): its heartbeat goes
    stale, the supervisor names it and stops sending WATCHDOG=1, so systemd would restart the gate."""
    import threading

    import drivers.heartbeat
    from drivers.thermal.serial_sensor import SerialThermalSensor

    monkeypatch.setattr(drivers.heartbeat, "DEFAULT_WITHIN_S", 0.5)
    release = threading.Event()
    hung = threading.Event()

    def wedged_publish(self: SerialThermalSensor, sample: object, now: float) -> None:
        hung.set()
        release.wait(30)

    monkeypatch.setattr(SerialThermalSensor, "_publish", wedged_publish)
    gate = Gate(load_config(sim_config(tmp_path)))
    seen: list[list[str]] = []
    original_check = gate.check

    def check_and_record() -> None:
        original_check()
        seen.append(gate.stuck_parts())

    monkeypatch.setattr(gate, "check", check_and_record)
    try:
        assert gate.run(seconds=3.5) == 0
    finally:
        release.set()
    assert hung.is_set(), "the simulator never delivered a frame"
    got = _receive_all(manager)
    assert got[0].startswith("READY=1") and got[-1] == "STOPPING=1", got
    assert "WATCHDOG=1" not in got[2:], got  # at most the first pass, before the promise ran out
    assert seen[-1] == ["thermal"], seen
