"""The gate's configuration: one pydantic tree, loaded from TOML, unknown keys refused.

Every field has a default and a description, so `gate config show` prints a complete, documented
configuration and `gate config check FILE` can point at the line of every error.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo

from drivers.relay import LcusConfig, RelayConfig
from drivers.thermal import GyMcu90614Config, ThermalConfig
from edge.camera import CameraConfig
from edge.config_base import Section
from edge.lane import LaneConfig
from edge.models import DEFAULT_MODELS_DIR
from edge.policy import PolicyConfig
from edge.sync.config import MqttConfig
from edge.temperature import TemperatureConfig
from edge.vision.config import VisionSection
from edge.web.config import WebConfig

CONFIG_VERSION = 1


class GateSection(Section):
    id: str = Field("gate-1", description="This gate's id: MQTT client id and topic level; unique in the community.",
                    pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    community: str = Field("demo", description="Community (residential estate) this gate belongs to.",
                           pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    data_dir: Path = Field(Path("/var/lib/edge-gate"), description="Where the SQLite store and queues live.")


class StoreSection(Section):
    retention_days: float = Field(30.0, gt=0, le=3650, description="Events already delivered to the server are "
                                  "deleted after this many days; undelivered events are never deleted.")
    snapshots: bool = Field(False, description="Keep a face crop with each event (privacy: off by default).")
    snapshot_retention_days: float = Field(7.0, gt=0, le=365, description="Face crops are deleted after this long.")


class SupervisorSection(Section):
    restart_min_s: float = Field(1.0, gt=0, le=600, description="First wait before restarting a part that died "
                                 "(the vision thread, the camera thread, a relay that cannot be opened); "
                                 "doubles per failure.")
    restart_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between restarts; a part that "
                                 "stays up this long starts again from restart_min_s.")
    mqtt_fault_after_s: float = Field(60.0, ge=0, le=86400, description="The broker link down this long raises "
                                      "mqtt_fault (mqtt_recovered once it is back); events wait in the outbox.")


class GateConfig(Section):
    version: Literal[1] = Field(1, description="Config file format version.")
    gate: GateSection = Field(default_factory=GateSection, description="Identity and storage of this gate.")
    vision: VisionSection = Field(default_factory=VisionSection, description="Face detection and recognition.")
    camera: CameraConfig = Field(default_factory=CameraConfig, description="The camera facing the lane.")
    thermal: ThermalConfig = Field(default_factory=lambda: GyMcu90614Config(port="/dev/gate-thermal"),
                                   description="The IR thermal sensor; `type` picks the driver.")
    temperature: TemperatureConfig = Field(default_factory=TemperatureConfig,
                                           description="Body temperature from the sensor's readings.")
    lane: LaneConfig = Field(default_factory=LaneConfig, description="Tracking, voting and the relay pulse.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Who may pass, and the fever rule. "
                                 "(gate_id is taken from [gate] id.)")
    store: StoreSection = Field(default_factory=StoreSection, description="The local SQLite store.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Sync with the community server's MQTT "
                             "broker: events out, signed whitelist pushes in.")
    relay: RelayConfig = Field(default_factory=lambda: LcusConfig(port="/dev/gate-relay"),
                               description="The relay wired to the turnstile; `type` picks the driver.")
    web: WebConfig = Field(default_factory=WebConfig, description="The guards' status web page.")
    supervisor: SupervisorSection = Field(default_factory=SupervisorSection, description="Restarts of failed "
                                          "parts and the alarms of a lost broker link.")


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


def _scalar_lines(model: BaseModel, first: str | None = None) -> list[str]:
    """A table's keys, each preceded by its description; unset options as comments; `first` leads."""
    lines: list[str] = []
    fields = type(model).model_fields
    for name, field in sorted(fields.items(), key=lambda item: item[0] != first):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            continue
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"# {name} = (unset)" if value is None else f"{name} = {_toml_value(value)}")
    return lines


def union_members(field: FieldInfo) -> list[type[BaseModel]]:
    """The config classes of a `type`-tagged union field (thermal, relay), or [] for any other field."""
    if field.discriminator is None:
        return []
    return [m for m in get_args(field.annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _alternative_lines(path: list[str], field: FieldInfo, active: type[BaseModel]) -> list[str]:
    """The other members of a tagged union, each as a complete table, commented out."""
    table = ".".join(path)
    lines = ["", f"# The other `type`s of [{table}], each with all its options and defaults. To use one,",
             f"# replace the [{table}] table above with its block, uncommented (drop the first \"# \" of each line)."]
    for member in union_members(field):
        if member is active:
            continue
        instance = member()
        if any(isinstance(getattr(instance, name), BaseModel) for name in type(instance).model_fields):
            raise TypeError(f"{member.__name__}: nested tables in a driver config are not rendered")
        lines += ["#", f"# [{table}]"] + [f"# {line}" for line in _scalar_lines(instance, first="type")]
    return lines


def to_toml(cfg: GateConfig, alternatives: bool = False) -> str:
    """Render the effective config as TOML, each key preceded by its description. With `alternatives`,
    each `type`-tagged table (thermal, relay) is followed by its other types, commented out."""
    lines: list[str] = []

    def emit(model: BaseModel, path: list[str], field: FieldInfo | None) -> None:
        tagged = alternatives and field is not None and bool(union_members(field))
        scalars = _scalar_lines(model, first="type" if tagged else None)
        if path and scalars:
            lines.append(f"\n[{'.'.join(path)}]")
        lines.extend(scalars)
        if tagged and field is not None:
            lines.extend(_alternative_lines(path, field, type(model)))
        for name, sub in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                emit(value, [*path, name], sub)

    emit(cfg, [], None)
    return "\n".join(lines).lstrip() + "\n"


EXAMPLE_HEADER = """\
# edge-gate configuration: every option, with its default and what it does.
# Copy to /etc/edge-gate/gate.toml and change what your gate needs; unknown keys are refused.
# Check a file with `gate config check FILE`; print the effective config with `gate config show`.
# Relative paths are relative to this file's directory.
# This file is generated by `gate config example > config/gate.example.toml` (a test keeps it in sync).

"""


def example_toml() -> str:
    """The documented example config: the defaults, with install-specific paths left as comments."""
    body = to_toml(GateConfig(), alternatives=True)
    default_models = _toml_value(DEFAULT_MODELS_DIR)
    body = body.replace(f"models_dir = {default_models}",
                        '# models_dir = "/opt/edge-gate/models"  (default: the models/ folder of the installation)')
    return EXAMPLE_HEADER + body


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but characters outside the BMP as themselves (JSON would write
    surrogate pairs, which TOML refuses) and DEL escaped (TOML refuses it raw)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
