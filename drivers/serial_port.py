"""Opening serial ports for the drivers (8N1, stale input dropped)."""

from __future__ import annotations

import serial


def open_serial(port: str, baud: int, timeout: float) -> serial.Serial:
    """Open `port` 8N1 and drop whatever a previous session left in the input queue."""
    ser = serial.Serial(port=port, baudrate=baud, bytesize=8, parity=serial.PARITY_NONE,
                        stopbits=serial.STOPBITS_ONE, timeout=timeout, write_timeout=1.0)
    ser.reset_input_buffer()
    return ser
