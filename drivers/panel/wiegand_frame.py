"""Wiegand frames, as bits and as a pulse train, and the loop that plays a train on two lines.

Formats (the de-facto standard, HID H10301 for 26 bits):
- 26-bit: bit 1 even parity over bits 2-13; bits 2-9 the facility code (8 bits); bits 10-25 the card
  number (16 bits); bit 26 odd parity over bits 14-25.
- 34-bit: bit 1 even parity over bits 2-17; bits 2-33 the 32-bit card number; bit 34 odd parity over
  bits 18-33.
Bits go out most significant first. Both lines idle high; a 0 is a low pulse on D0, a 1 on D1, each
`pulse_us` long (20-100 us; 50 typical), one every `interval_us` (200 us - 20 ms; 1-2 ms typical).
The train is the lines' logical states: "active" is a pulse (the line pulled low on a direct wiring).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Line = Literal["d0", "d1"]


@dataclass(frozen=True)
class Edge:
    """At `at_us` from the frame's start, `line` becomes active (a pulse starts) or inactive."""

    at_us: int
    line: Line
    active: bool


def frame_bits(card: int, bits: int, facility: int = 0) -> tuple[int, ...]:
    """The frame of `card` as 26 or 34 bits (0/1), parity included; ValueError when it does not fit."""
    if isinstance(card, bool) or not isinstance(card, int) or card < 0:
        raise ValueError(f"card must be a non-negative whole number, not {card!r}")
    if bits == 26:
        if not 0 <= facility <= 0xFF:
            raise ValueError(f"a 26-bit facility code is 0..255, not {facility}")
        if card > 0xFFFF:
            raise ValueError(f"card {card} does not fit a 26-bit frame (0..65535); use 34-bit")
        data = [(facility >> (7 - i)) & 1 for i in range(8)] + [(card >> (15 - i)) & 1 for i in range(16)]
    elif bits == 34:
        if card > 0xFFFF_FFFF:
            raise ValueError(f"card {card} does not fit a 34-bit frame (0..4294967295)")
        data = [(card >> (31 - i)) & 1 for i in range(32)]
    else:
        raise ValueError(f"Wiegand frames here are 26 or 34 bits, not {bits}")
    half = len(data) // 2
    even = sum(data[:half]) % 2  # makes the first half plus this bit even
    odd = 1 - sum(data[half:]) % 2  # makes the second half plus this bit odd
    return (even, *data, odd)


def pulse_train(bits: Sequence[int], pulse_us: int, interval_us: int) -> list[Edge]:
    """The edges of a frame: bit i's pulse starts at i * interval_us on D0 (a 0) or D1 (a 1)."""
    if not 0 < pulse_us < interval_us:
        raise ValueError(f"the pulse ({pulse_us} us) must be shorter than the interval ({interval_us} us)")
    out = []
    for i, bit in enumerate(bits):
        line: Line = "d1" if bit else "d0"
        out += [Edge(i * interval_us, line, True), Edge(i * interval_us + pulse_us, line, False)]
    return out


def play(train: Sequence[Edge], write: Callable[[Line, bool], None],
         clock_ns: Callable[[], int] = time.perf_counter_ns) -> int:
    """Switch the lines at the train's times (spinning: a frame lasts 50-70 ms at the usual 2 ms interval,
    and waking from a sleep is late by up to milliseconds on a busy machine; only a wait of more than 5 ms
    sleeps, until 2 ms before the edge); returns the frame's length in ns as played. `write` sets a line.

    When an edge goes out late (the thread was preempted), the rest of the train moves back by as much:
    a pulse is never shorter than its configured width, nor two pulses closer than the interval (a late
    start with an on-time end could make a pulse too short for the panel to see)."""
    start = clock_ns()
    shift = 0
    for edge in train:
        due = start + edge.at_us * 1000 + shift
        left = due - clock_ns()
        if left > 5_000_000:
            time.sleep((left - 2_000_000) / 1e9)
        while clock_ns() < due:
            pass
        write(edge.line, edge.active)
        shift += max(0, clock_ns() - due)
    return clock_ns() - start
