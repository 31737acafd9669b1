"""Shared pieces of the fuzz suite: bounded, deterministic Hypothesis settings and JSON strategies."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz_settings(max_examples: int) -> settings:
    """Deterministic (the same examples every run, no example database) and bounded."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# Text as it arrives over the wire: any Unicode scalar value (no lone surrogates: JSON/UTF-8 cannot carry them).
wire_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63)
                | st.floats(allow_nan=False, allow_infinity=False) | wire_text)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (finite numbers, any text)."""
    return st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(wire_text, inner, max_size=4), max_leaves=max_leaves)


def json_objects(max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(wire_text, json_values(max_leaves), max_size=6)


def reorder(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's members in a shuffled order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: reorder(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [reorder(v, rng) for v in value]
    return value


def dumps_any_style(value: Any, style: int) -> bytes:
    """JSON text in one of several equivalent layouts (indentation, separators, ASCII escapes)."""
    indent = [None, 0, 2, "\t"][style % 4]
    return json.dumps(value, indent=indent, ensure_ascii=bool(style & 4),
                      separators=(",", ":") if style & 8 else None).encode("utf-8")
