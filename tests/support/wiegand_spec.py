"""A Wiegand decoder written from the interface spec alone (SIA AC-01 timing; the H10301 26-bit layout; the
common 34-bit layout), as a panel reads the two wires: for the Wiegand and OSDP tests."""

from __future__ import annotations

import itertools


class WiegandDecodeError(ValueError):
    pass


def decode_wires(edges: list[tuple[int, str, bool]], *, min_pulse_us: float = 20, max_pulse_us: float = 100,
                 min_interval_us: float = 200, max_interval_us: float = 20_000,
                 check_timing: bool = True) -> list[int]:
    """Bits from the two wires as a panel reads them: (t_ns, "d0"/"d1", pulled) transitions. A pulse on D0
    is a 0, on D1 a 1; the two are never pulled together; each pulse lasts 20-100 us; pulses start
    200 us - 20 ms apart."""
    low: dict[str, int | None] = {"d0": None, "d1": None}
    bits, starts, widths = [], [], []
    for t, line, pulled in edges:
        other = "d1" if line == "d0" else "d0"
        if pulled:
            if low[line] is not None:
                raise WiegandDecodeError(f"{line} pulled twice without release")
            if low[other] is not None:
                raise WiegandDecodeError("D0 and D1 pulled at the same time")
            low[line] = t
            starts.append(t)
            bits.append(1 if line == "d1" else 0)
        else:
            began = low[line]
            if began is None:
                raise WiegandDecodeError(f"{line} released without a pulse")
            widths.append((t - began) / 1000)
            low[line] = None
    if any(v is not None for v in low.values()):
        raise WiegandDecodeError("frame ends with a line still pulled")
    if check_timing:
        for w in widths:
            if not min_pulse_us <= w <= max_pulse_us:
                raise WiegandDecodeError(f"pulse of {w:.1f} us outside {min_pulse_us}-{max_pulse_us} us")
        for a, b in itertools.pairwise(starts):
            gap = (b - a) / 1000
            if not min_interval_us <= gap <= max_interval_us:
                raise WiegandDecodeError(f"interval of {gap:.1f} us outside {min_interval_us}-{max_interval_us} us")
    return bits


def decode_26(bits: list[int]) -> tuple[int, int]:
    """(facility, card) of an H10301 frame: P(even over 2-13) F8 C16 P(odd over 14-25)."""
    if len(bits) != 26:
        raise WiegandDecodeError(f"{len(bits)} bits, not 26")
    if sum(bits[0:13]) % 2 != 0:
        raise WiegandDecodeError("even parity (bits 1-13) fails")
    if sum(bits[13:26]) % 2 != 1:
        raise WiegandDecodeError("odd parity (bits 14-26) fails")
    value = int("".join(map(str, bits[1:25])), 2)
    return value >> 16, value & 0xFFFF


def decode_34(bits: list[int]) -> int:
    """The 32-bit number of a 34-bit frame: P(even over 2-17) D32 P(odd over 18-33)."""
    if len(bits) != 34:
        raise WiegandDecodeError(f"{len(bits)} bits, not 34")
    if sum(bits[0:17]) % 2 != 0:
        raise WiegandDecodeError("even parity (bits 1-17) fails")
    if sum(bits[17:34]) % 2 != 1:
        raise WiegandDecodeError("odd parity (bits 18-34) fails")
    return int("".join(map(str, bits[1:33])), 2)
