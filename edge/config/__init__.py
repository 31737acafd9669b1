"""The gate's configuration: one pydantic tree, loaded from TOML, unknown keys refused.

Every field has a default and a description, so `gate config show` prints a complete, documented
configuration and `gate config check FILE` can point at the line of every error. One module per section;
nothing here imports the runtime (no OpenCV, onnxruntime, device libraries or web server), so `gate --help`
and `gate config ...` stay fast on a small device.
"""

from __future__ import annotations

from edge.config.base import Section
from edge.config.gate import CONFIG_VERSION, GateConfig, GateSection, StoreSection, SupervisorSection
from edge.config.loader import ConfigError, config_as_dict, load_config, parse_config
from edge.config.render import example_toml, to_toml, union_members

__all__ = [
    "CONFIG_VERSION", "ConfigError", "GateConfig", "GateSection", "Section", "StoreSection", "SupervisorSection",
    "config_as_dict", "example_toml", "load_config", "parse_config", "to_toml", "union_members",
]
