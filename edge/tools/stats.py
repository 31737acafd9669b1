"""Percentiles of measured samples, as the benchmarks and the fleet report them (pure Python: numpy's
default linear interpolation, so importing this costs nothing)."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linearly interpolated between the two nearest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile of durations measured in seconds, in milliseconds."""
    return percentile(seconds, q) * 1000.0


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return float(sum(values)) / len(values)


def summary(values: Sequence[float], *, over: float = 150.0) -> dict[str, float | int]:
    """{n, p50, p95, p99, max, over_<over>} rounded to 0.1, or {n: 0}: the fleet report's latency figures."""
    if not values:
        return {"n": 0}
    out: dict[str, float | int] = {"n": len(values)}
    for q in (50, 95, 99):
        out[f"p{q}"] = round(percentile(values, q), 1)
    out["max"] = round(float(max(values)), 1)
    out[f"over_{over:g}"] = sum(1 for v in values if v > over)
    return out
