"""The config loader under arbitrary TOML: every text gives a GateConfig or a ConfigError whose every
problem names the line of the offending key, never another exception; `to_toml` (what `gate config
show` prints) reads back as the same config whatever text the string fields hold."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import fuzz_settings
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from edge.config import ConfigError, GateConfig, parse_config, to_toml

pytestmark = pytest.mark.fuzz


def _tables(model: BaseModel, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every table of the default config with its scalar fields and their defaults."""
    out: dict[tuple[str, ...], dict[str, Any]] = {path: {}}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out.update(_tables(value, (*path, name)))
        else:
            out[path][name] = value
    return out


TABLES = _tables(GateConfig())
KNOWN = sorted(TABLES)
# Values some fields take, so generated documents also reach the validators behind them.
SPECIAL = st.sampled_from([
    "sim", "gy_mcu90614", "gy_mcu90640", "ascii_line", "lcus", "modbus_rtu", "gpio", "folder", "file", "v4l2",
    "rtsp", "yunet", "scrfd", "sface", "arcface", "America", "Europe/Berlin", "UTC", "a" * 300, "../etc",
    "mqtt://broker:1883", "mqtts://u:p@h", "mqtt://h:99999", "ed25519:AAAA", "{env:X}", "(?P<object>", "x" * 70,
])

bare_key = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
any_key = bare_key | st.text(min_size=1, max_size=10)
toml_scalars = (st.integers(-(2**70), 2**70) | st.floats() | st.booleans() | st.text(max_size=20) | SPECIAL
                | st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=-5))))
                | st.dates() | st.times())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(bare_key, inner, max_size=3), max_leaves=8)


def near_default(default: Any) -> st.SearchStrategy[Any]:
    """A value of the default's type, often close to it (so the range checks are exercised)."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(default - 3, default + 3) | st.integers()
    if isinstance(default, float):
        return st.floats(default - 1, default + 1) | st.floats()
    if isinstance(default, str | Path):
        return st.text(max_size=30) | SPECIAL
    return toml_values


# ------------------------------------------------------------------------------ a small TOML writer


def _string(text: str, style: int) -> str:
    if style == 1 and "'" not in text and "\n" not in text and not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", text):
        return f"'{text}'"  # literal string
    out = json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
    return out


def toml_value(value: Any, style: int = 0) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if style == 1 and value > 0 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        return _string(str(value), style)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v, style) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v, style)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_key(key: str, style: int) -> str:
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", key) is not None
    if bare and style != 2:
        return key
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[tuple[str, ...], int]]:
    """A TOML document over known and unknown tables and keys, and the line of every table and key."""
    lines: list[str] = []
    where: dict[tuple[str, ...], int] = {}
    paths = draw(st.lists(st.sampled_from(KNOWN[1:]) | st.tuples(bare_key), min_size=1, max_size=4, unique=True))
    top = draw(st.lists(st.tuples(st.sampled_from(sorted(TABLES[()])) | bare_key, toml_values), max_size=2,
                        unique_by=lambda kv: kv[0]))
    for key, value in top:
        lines.append(f"{key} = {toml_value(value)}")
        where[(key,)] = len(lines)
    for path in paths:
        fields = TABLES.get(path, {})
        names = draw(st.lists(st.sampled_from(sorted(fields)) | any_key, max_size=4, unique=True)
                     if fields else st.lists(any_key, max_size=2, unique=True))
        style = draw(st.integers(0, 2))
        spaced = draw(st.booleans())
        dot = " . " if spaced else "."
        lines.append("")
        lines.append(f"[{' ' if spaced else ''}{dot.join(toml_key(p, style) for p in path)}{' ' if spaced else ''}]")
        for i in range(1, len(path) + 1):
            where.setdefault(path[:i], len(lines))
        for name in names:
            value = draw(near_default(fields[name]) if name in fields else toml_values)
            lines.append(f"{toml_key(name, style)}{' ' * draw(st.integers(0, 2))}= {toml_value(value, style)}")
            where[(*path, name)] = len(lines)
    return "\n".join(lines) + "\n", where


def _expected_lines(loc: tuple[str, ...], where: dict[tuple[str, ...], int]) -> set[int]:
    """Lines of the most specific written table or key whose path runs along the error's location
    (a tagged union adds its tag to the location, e.g. thermal.ascii_line.pattern)."""
    def along(path: tuple[str, ...]) -> bool:
        it = iter(loc)
        return path[0] == loc[0] and all(any(p == q for q in it) for p in path)
    found = [p for p in where if along(p)]
    if not found:
        return set()
    longest = max(len(p) for p in found)
    return {where[p] for p in found if len(p) == longest}


@fuzz_settings(300)
@given(documents())
def test_any_document_gives_a_config_or_errors_with_their_lines(doc: tuple[str, dict[tuple[str, ...], int]]) -> None:
    text, where = doc
    try:
        cfg = parse_config(text)
    except ConfigError as exc:
        assert exc.problems
        cause = exc.__cause__
        if not isinstance(cause, ValidationError):
            assert len(exc.problems) == 1 and exc.problems[0].startswith("TOML syntax:")
            assert re.search(r"line \d+|end of document|nested too deeply", exc.problems[0]), exc.problems
            return
        for problem, err in zip(exc.problems, cause.errors(), strict=True):
            m = re.match(r"^line (\d+): ", problem)
            assert m, f"no line in {problem!r}\n{text}"
            expected = _expected_lines(tuple(str(p) for p in err["loc"]), where)
            assert int(m.group(1)) in expected, f"{problem!r}: expected one of lines {sorted(expected)}\n{text}"
    else:
        assert isinstance(cfg, GateConfig)


@fuzz_settings(200)
@given(st.text(max_size=300) | st.sampled_from(["[", "a = [", "[[a]]\n[a]", "a = {", '"', "a.b = 1\n[a]\nb = 2"]))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@pytest.mark.parametrize("depth", [50, 5_000])
def test_deep_nesting_is_a_config_error(depth: int) -> None:
    for text in (f"x = {'[' * depth}{']' * depth}\n", f"x = {'{a = ' * depth}1{'}' * depth}\n"):
        with pytest.raises(ConfigError):
            parse_config(text)


@pytest.mark.parametrize("zone", ["America", "Europe", "a" * 300, "../../etc/passwd", "Europe/Nowhere"])
def test_time_zone_that_is_no_zone_file_is_a_config_error(zone: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f'[gate]\nid = "g"\n\n[policy]\ntimezone = {json.dumps(zone)}\n')
    assert err.value.problems[0].startswith("line 5: policy.timezone"), err.value.problems


STRING_FIELDS = [("gate", "data_dir"), ("thermal", "port"), ("relay", "port"), ("web", "host"),
                 ("vision", "detector", "file"), ("mqtt", "topic_prefix")]
NUMBER_FIELDS = [(path, name) for path, fields in TABLES.items() for name, v in fields.items()
                 if isinstance(v, int | float) and not isinstance(v, bool)]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@fuzz_settings(200)
@given(st.lists(st.tuples(st.sampled_from(STRING_FIELDS), st.text(st.characters(exclude_categories=("Cs",)),
                                                                   min_size=1, max_size=30)), max_size=4),
       st.lists(st.tuples(st.sampled_from(NUMBER_FIELDS), st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6)),
                max_size=4))
def test_show_output_reads_back_as_the_same_config(strings: list[tuple[tuple[str, ...], str]],
                                                    numbers: list[tuple[tuple[tuple[str, ...], str], float]]) -> None:
    data = GateConfig().model_dump(mode="python")
    for path, text in strings:
        _set(data, path, text)
    for (path, name), number in numbers:
        old = TABLES[path][name]
        _set(data, (*path, name), type(old)(number) if isinstance(old, int) else float(number))
    try:
        cfg = GateConfig.model_validate(data)
    except ValidationError:
        assume(False)
        return
    assert parse_config(to_toml(cfg)).model_dump() == cfg.model_dump()
