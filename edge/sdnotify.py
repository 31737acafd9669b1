"""systemd readiness and watchdog notifications (sd_notify) over the $NOTIFY_SOCKET datagram socket.

A few lines of our own instead of a dependency: one unix datagram per message, abstract sockets
('@name') included. Without $NOTIFY_SOCKET (not started by systemd) every call is a no-op returning False.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace
    if raw.startswith("/"):
        return raw
    return None  # vsock and other forms are not used on a gate


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1", several lines allowed) to systemd; True when it was sent."""
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw:
        return False
    address = _address(raw)
    if address is None:
        log.warning("NOTIFY_SOCKET %s is not a unix socket path; not notifying", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", raw, exc)
        return False
    return True


def ready() -> bool:
    """The gate's parts are up (Type=notify: systemd considers the service started now)."""
    return notify(f"READY=1\nMAINPID={os.getpid()}")


def watchdog() -> bool:
    """Keep-alive for WatchdogSec=; call only when every part is alive and fresh."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """A clean shutdown has begun."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by `systemctl status`."""
    return notify("STATUS=" + text.replace("\n", " "))


def watchdog_interval_s() -> float | None:
    """The watchdog timeout systemd set for this process (seconds), or None when there is none.

    $WATCHDOG_PID, when set, must be our pid (otherwise the variables were inherited from a parent).
    Ping at half this interval or more often.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    usec = os.environ.get("WATCHDOG_USEC", "")
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None
