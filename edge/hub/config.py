"""`hub.toml`: the hub's `[hub]` section and the `[mqtt]` connection (the gate's MqttConfig: url, TLS,
user name and password reference; the gate-only fields are ignored)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import Field, ValidationError

from edge.config.base import Section
from edge.config.mqtt import MqttConfig


class HubSection(Section):
    community: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="The community this hub serves.")
    data_dir: Path = Field(Path("/var/lib/edge-gate-hub"), description="The hub's files (its SQLite database, "
                           "its admin key when not a systemd credential).")
    database: str = Field("", description="Empty: {data_dir}/hub.db (SQLite). Or postgresql://user@host:port/db "
                          "(psycopg 3; the password from PGPASSWORD or ~/.pgpass, never in this file).")
    admin_key_file: Path | None = Field(None, description="The admin signing key (PEM). None: "
                                        "$CREDENTIALS_DIRECTORY/admin-key, else {data_dir}/admin-key.pem.")
    delta_valid_hours: float = Field(24.0, gt=0, le=24 * 30, description="Lifetime of a push (expires_at).")
    snapshot_min_interval_s: float = Field(10.0, ge=0, le=3600, description="One snapshot per gate at most "
                                           "this often (a gate re-asks with backoff anyway).")
    keep_photos: bool = Field(False, description="Keep enrolment photos in {data_dir}/photos (mode 0600, "
                              "deleted with the person); by default they are discarded once the template is made.")
    import_batch: int = Field(500, ge=1, le=5000, description="Persons per change when importing a file.")
    instance: str = Field("1", pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="This process's name (its MQTT "
                          "client id is edge-gate-hub-{community}-{instance}; several share one database).")
    shared_group: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,64}$", description="Non-empty: take events, alarms, "
                              "acks and states through the MQTT v5 shared subscription $share/{group}/..., so "
                              "several hub processes split the load (each message reaches one of them).")
    publisher: bool = Field(True, description="This process publishes deltas and snapshots (exactly one "
                            "process of a community should; the others only archive).")
    state_interval_s: float = Field(30.0, ge=1, le=3600, description="How often the hub publishes its signed "
                                    "heartbeat (gates leave the care watch to a fresh one).")
    gate_silent_after_s: float = Field(120.0, ge=5, le=86400, description="A gate heard of nothing (state, "
                                       "event, online) for this long raises a gate_silent alarm at the hub.")
    watch_interval_s: float = Field(30.0, ge=0.1, le=3600, description="How often care watch and silent gates "
                                    "are checked.")
    web_port: int = Field(-1, ge=-1, le=65535, description="The admin page's port (-1: no page; 0: any free "
                          "port, printed at start).")
    web_host: str = Field("127.0.0.1", description="Where the admin page listens (put TLS in front of it).")
    web_language: str = Field("zh-CN", pattern=r"^(zh-CN|en)$", description="The page's default language.")
    session_expiry_s: int = Field(3600, ge=0, le=7 * 86400, description="The broker keeps the hub's session "
                                  "(and what it has not acknowledged) this long while the hub is away.")


class HubConfig(Section):
    hub: HubSection
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

    @property
    def database_url(self) -> str:
        return self.hub.database or str(self.hub.data_dir / "hub.db")

    def admin_key_path(self) -> Path:
        cred = os.environ.get("CREDENTIALS_DIRECTORY")
        if self.hub.admin_key_file is not None:
            return self.hub.admin_key_file
        if cred and (Path(cred) / "admin-key").exists():
            return Path(cred) / "admin-key"
        return self.hub.data_dir / "admin-key.pem"


class HubConfigError(ValueError):
    """hub.toml cannot be used; one line with the file, the key and the fix."""


def load_hub_config(path: Path) -> HubConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HubConfigError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise HubConfigError(f"{path}: not TOML ({exc})") from exc
    try:
        cfg = HubConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HubConfigError(f"{path}: {where}: {first['msg']}") from exc
    if not cfg.hub.data_dir.is_absolute():
        cfg.hub.data_dir = (path.parent / cfg.hub.data_dir).resolve()
    return cfg
