"""Real pseudo-terminals for the device simulators: raw mode, a stable link path, unplug and replug.

A simulator owns the master side of a pty and speaks the device's byte protocol on it; a driver opens
the slave side with pyserial exactly as it opens a USB adapter. `link` plays the part of a udev
symlink (/dev/serial/by-id/...): on unplug the pty is closed and the link removed, on replug a new
pty appears behind the same link. A pty carries bytes at any speed, but the speed the driver set on
its side is visible from the master (`line_baud`), so a simulator can tell a driver at the wrong
speed and garble what it hears and says, as a real UART does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

log = logging.getLogger(__name__)

_SPEEDS = {getattr(termios, f"B{n}"): n for n in (
    50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
    230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
    3500000, 4000000) if hasattr(termios, f"B{n}")}


class PtyDevice:
    """A simulated serial device on a real pty; subclasses implement `handle` and `tick`."""

    poll_s = 0.005

    def __init__(self, link: str | Path | None = None, name: str = "sim") -> None:
        self.name = name
        self._auto_link_dir: str | None = None
        self.link = Path(link) if link is not None else None
        self._master: int | None = None
        self._slave: int | None = None
        self._tty = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.received = bytearray()
        self.bytes_sent = 0
        self.bytes_dropped = 0
        self.plug_count = 0

    # -- pty life cycle -------------------------------------------------------------------------
    def use_auto_link(self) -> None:
        """Serve behind a link in a fresh temporary directory (needed when the pty is replaced)."""
        if self.link is None:
            self._auto_link_dir = tempfile.mkdtemp(prefix="edge-gate-sim-")
            self.link = Path(self._auto_link_dir) / "tty"

    @property
    def path(self) -> str:
        """The path a driver opens: the stable link if there is one, else the slave tty."""
        return str(self.link) if self.link is not None else self._tty

    @property
    def tty_path(self) -> str:
        return self._tty

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def line_baud(self) -> int | None:
        """The speed the driver's side of the pty is set to (termios), None when unplugged or unknown."""
        fd = self._master
        if fd is None:
            return None
        try:
            return _SPEEDS.get(termios.tcgetattr(fd)[5])
        except (OSError, termios.error):
            return None

    def plug(self) -> None:
        """Open a new pty in raw mode and point the link at its slave side."""
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)
            tty.setraw(master)
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self._tty = os.ttyname(slave)
            self.plug_count += 1
            if self.link is not None:
                tmp = self.link.with_name(self.link.name + ".new")
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(self._tty)
                tmp.replace(self.link)
        log.info("%s: plugged in at %s", self.name, self.path)

    def unplug(self) -> None:
        """Close the pty (the driver's reads and writes fail, as on a USB unplug) and remove the link."""
        with self._lock:
            if self._master is None:
                return
            if self.link is not None:
                self.link.unlink(missing_ok=True)
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
        log.info("%s: unplugged", self.name)

    # -- I/O ----------------------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Send bytes to the driver; like a UART nobody listens to, bytes that find no room are dropped."""
        with self._lock:
            fd = self._master
            if fd is None:
                self.bytes_dropped += len(data)
                return False
            view = memoryview(data)
            deadline = time.monotonic() + 0.2
            while view:
                try:
                    n = os.write(fd, view)
                except BlockingIOError:
                    n = 0
                except OSError:
                    self.bytes_dropped += len(view)
                    return False
                view = view[n:]
                self.bytes_sent += n
                if view:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.bytes_dropped += len(view)
                        return False
                    select.select([], [fd], [], min(left, 0.01))
            return True

    def _read(self, timeout: float) -> bytes:
        fd = self._master
        if fd is None:
            time.sleep(timeout)
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return b""
            data = os.read(fd, 4096)
        except (OSError, ValueError):
            return b""
        with self._lock:
            self.received += data
        return data

    # -- serving ------------------------------------------------------------------------------
    def handle(self, data: bytes, now: float) -> None:
        """Bytes the driver sent."""

    def tick(self, now: float) -> None:
        """Called every poll period: emit frames, play the scenario."""

    def start(self) -> PtyDevice:
        """Plug in and serve in a background thread."""
        self.plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"{self.name}-sim", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, stop: threading.Event) -> None:
        """Plug in and serve in this thread until `stop` is set."""
        self.plug()
        self._stop = stop
        self._serve()

    def _serve(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self.tick(now)
                data = self._read(self.poll_s)
                if data:
                    self.handle(data, time.monotonic())
            except Exception:  # a simulator bug must not look like a device that vanished silently
                log.exception("%s: simulator error", self.name)
                time.sleep(self.poll_s)

    def stop(self) -> None:
        """Stop serving, close the pty and remove the link (and its temporary directory)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.unplug()
        if self._auto_link_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._auto_link_dir)

    def __enter__(self) -> PtyDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
