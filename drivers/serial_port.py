"""Opening serial ports for the drivers, and the reconnect backoff they share."""

from __future__ import annotations

import serial


class Backoff:
    """Exponential reconnect delay: `min_s`, doubled on each failure up to `max_s`, reset on success."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max(min_s, max_s)
        self.delay = min_s

    def failed(self) -> float:
        """The delay to wait now; the next one is doubled."""
        current = self.delay
        self.delay = min(self.max_s, self.delay * 2)
        return current

    def reset(self) -> None:
        self.delay = self.min_s


def open_serial(port: str, baud: int, timeout: float) -> serial.Serial:
    """Open `port` 8N1 and drop whatever a previous session left in the input queue."""
    ser = serial.Serial(port=port, baudrate=baud, bytesize=8, parity=serial.PARITY_NONE,
                        stopbits=serial.STOPBITS_ONE, timeout=timeout, write_timeout=1.0)
    ser.reset_input_buffer()
    return ser
