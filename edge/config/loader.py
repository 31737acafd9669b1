"""Loading a config file: TOML parsed, validated against `GateConfig`, every error with its line number,
relative paths made relative to the file."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config.gate import GateConfig


class ConfigError(ValueError):
    """The config file is unreadable or invalid; `problems` holds one line per error, with its line number."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""  # a bare, "basic" or 'literal' key
_DOTTED = rf"(?:{_PART})(?:\s*\.\s*(?:{_PART}))*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")


def _key_path(dotted: str) -> tuple[str, ...]:
    parts = []
    for part in re.findall(_PART, dotted):
        if part.startswith('"'):
            try:
                part = json.loads(part)  # the escapes TOML shares with JSON
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map dotted key paths (tables, keys and their parents) to their 1-based line number in a TOML text."""
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for no, line in enumerate(text.split("\n"), start=1):  # TOML's line ends (splitlines() knows more)
        if m := _HEADER.match(line):
            table = _key_path(m.group(1))
            path = table
        elif m := _KEY.match(line):
            path = table + _key_path(m.group(1))
        else:
            continue
        for end in range(1, len(path) + 1):
            index.setdefault(path[:end], no)
    return index


def _locate(index: dict[tuple[str, ...], int], loc: tuple[str | int, ...]) -> int | None:
    path = tuple(str(p) for p in loc)
    # a tagged union puts its tag into the location (thermal.ascii_line.pattern); the file does not have it
    candidates = [path] + [path[:i] + path[i + 1:] for i in range(1, len(path))]
    for end in range(len(path), 0, -1):
        for candidate in candidates:
            if candidate[:end] in index:
                return index[candidate[:end]]
    return None


def parse_config(text: str, path: Path | None = None) -> GateConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"TOML syntax: {exc}"]) from exc
    except RecursionError as exc:  # tomllib recurses once per nested array or inline table
        raise ConfigError(path, ["TOML syntax: arrays or inline tables nested too deeply"]) from exc
    try:
        return GateConfig.model_validate(data)
    except ValidationError as exc:
        index = _line_index(text)
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _locate(index, loc)
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            prefix = f"line {line}: " if line else ""
            problems.append(f"{prefix}{dotted}: {err['msg']}")
        raise ConfigError(path, problems) from exc


def load_config(path: Path | str | None) -> GateConfig:
    """Load and validate a config file; None gives the defaults."""
    if path is None:
        return GateConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(p, [f"cannot read: {exc.strerror or exc}"]) from exc
    cfg = parse_config(text, p)
    return _resolve_relative_paths(cfg, p.parent)


def _resolve_relative_paths(cfg: GateConfig, base: Path) -> GateConfig:
    """Relative paths in a config file are relative to the file's directory, not the working directory."""
    if not cfg.gate.data_dir.is_absolute():
        cfg.gate.data_dir = (base / cfg.gate.data_dir).resolve()
    if not cfg.vision.models_dir.is_absolute():
        cfg.vision.models_dir = (base / cfg.vision.models_dir).resolve()
    if cfg.camera.type in ("folder", "file") and not Path(cfg.camera.source).is_absolute():
        cfg.camera.source = str((base / cfg.camera.source).resolve())
    return cfg


def config_as_dict(cfg: GateConfig) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cfg.model_dump_json())
    return result
