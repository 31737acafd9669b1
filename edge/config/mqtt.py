"""The `[mqtt]` config section and the secret references it holds (never a literal password).

A secret reference is `{env:NAME}` (an environment variable) or `{cred:NAME}` (a file in
`$CREDENTIALS_DIRECTORY`, which systemd fills from `LoadCredential=`).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, field_validator, model_validator

from edge.config.base import Section
from edge.protocol.signing import parse_public_key

SECRET_REF = re.compile(r"^\{(env|cred):([A-Za-z0-9_.-]{1,128})\}$")
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class SecretError(ValueError):
    """A secret reference is malformed or points at nothing."""


def resolve_secret(ref: str, environ: Mapping[str, str] | None = None) -> str:
    """The value behind `{env:NAME}` or `{cred:NAME}`; SecretError when it is missing or malformed."""
    env = os.environ if environ is None else environ
    m = SECRET_REF.match(ref.strip()) if isinstance(ref, str) else None
    if m is None:
        raise SecretError(f"secret reference {ref!r} is not {{env:NAME}} or {{cred:NAME}}")
    source, name = m.group(1), m.group(2)
    if source == "env":
        value = env.get(name)
        if value is None:
            raise SecretError(f"environment variable {name} (from {ref}) is not set")
        return value
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        raise SecretError(f"{ref}: $CREDENTIALS_DIRECTORY is not set (systemd LoadCredential= sets it)")
    if name in (".", ".."):
        raise SecretError(f"{ref}: not a credential name")
    path = Path(cred_dir) / name
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SecretError(f"{ref}: cannot read {path}: {exc.strerror or exc}") from exc


class MqttConfig(Section):
    enabled: bool = Field(False, description="Connect to the community broker (events out, whitelist in).")
    url: str = Field("mqtt://127.0.0.1:1883", description="Broker: mqtt://host:port or mqtts://host:port (TLS).")
    topic_prefix: str = Field("edge-gate", pattern=r"^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64})*$",
                              description="First topic levels; topics are {prefix}/{community}/{gate}/...")
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive; the broker declares the gate "
                             "offline (LWT) after 1.5 times this without traffic.")
    username: str | None = Field(None, max_length=256, description="Broker user name (None: anonymous).")
    password_secret: str | None = Field(
        None, description="Broker password as a reference, never the password itself: {env:NAME} or "
        "{cred:NAME} (a file in $CREDENTIALS_DIRECTORY, see systemd LoadCredential=).")
    tls_ca_file: Path | None = Field(None, description="CA bundle for mqtts:// (None: the system's CAs).")
    tls_cert_file: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    tls_key_file: Path | None = Field(None, description="Client private key (PEM) for mutual TLS.")
    tls_min_version: Literal["1.2", "1.3"] = Field("1.2", description="Lowest TLS version accepted.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Outbox messages published and not yet "
                              "acknowledged (PUBACK) at once.")
    state_interval_s: float = Field(30.0, ge=1, le=3600, description="How often the retained `state` "
                                    "health document is republished.")
    reconnect_min_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay; doubles per failure.")
    reconnect_max_s: float = Field(60.0, gt=0, le=3600, description="Longest reconnect delay.")
    admin_public_keys: list[str] = Field(
        default_factory=list, description="Admin keys trusted to sign whitelist pushes: 'ed25519:<base64>' "
        "(several allowed, for rotation). Empty: every push is refused.")
    gate_key_file: Path | None = Field(
        None, description="The gate's own Ed25519 private key (PEM, mode 0600), which signs everything it "
        "publishes. None: $CREDENTIALS_DIRECTORY/gate-key if systemd passes it, else {data_dir}/gate-key.pem "
        "(made at the first start; `gate keys init` makes it ahead, `gate keys show` prints its public key).")
    max_clock_skew_s: float = Field(120.0, ge=0, le=3600, description="A peer gate's passage dated more than "
                                    "this far in the future is refused (and alarmed as forged_message).")
    snapshot_chunk_timeout_s: float = Field(60.0, gt=0, le=3600, description="A snapshot whose chunks do not "
                                            "all arrive within this is dropped and nacked `incomplete`.")
    snapshot_reask_min_s: float = Field(5.0, gt=0, le=3600, description="A gate that needs a snapshot asks "
                                        "again after this, doubling each time (with jitter)...")
    snapshot_reask_max_s: float = Field(300.0, gt=0, le=86400, description="...up to this.")
    backfill_hours: float = Field(24.0, ge=0, le=24 * 14, description="On each connect the gate asks the hub "
                                  "for the other gates' grants it missed while away (at most this far back at "
                                  "start); 0: never.")
    keep_photos: bool = Field(False, description="Keep the face photos of whitelist pushes after making "
                              "templates from them (default: discard them).")
    max_snapshot_persons: int = Field(100_000, ge=1, le=1_000_000,
                                      description="Largest whitelist snapshot accepted (persons).")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("url must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("url needs a host, e.g. mqtt://broker.example:1883")
        if parts.username or parts.password:
            raise ValueError("put no credentials in the url; use username and password_secret")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("url is scheme://host:port only")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"url port: {exc}") from exc
        return v

    @field_validator("password_secret")
    @classmethod
    def _secret_ref(cls, v: str | None) -> str | None:
        if v is not None and not SECRET_REF.match(v.strip()):
            raise ValueError("password_secret must be a reference, {env:NAME} or {cred:NAME}, not the password")
        return v

    @field_validator("admin_public_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_public_key(text)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.snapshot_reask_max_s < self.snapshot_reask_min_s:
            raise ValueError("snapshot_reask_max_s must be >= snapshot_reask_min_s")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if not self.tls and any(f is not None for f in (self.tls_ca_file, self.tls_cert_file)):
            raise ValueError("tls_* files are set but the url is mqtt:// (use mqtts://)")
        if self.password_secret is not None and self.username is None:
            raise ValueError("password_secret needs a username")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for mqtts://: the CA (or the system's), the minimum version, the client
        certificate for mutual TLS; the broker's certificate and host name are always checked."""
        return tls_context(self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_min_version)

    def trusted_keys(self) -> list[Ed25519PublicKey]:
        return [parse_public_key(t) for t in self.admin_public_keys]

    def password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The broker password resolved from its reference (None when there is none)."""
        return None if self.password_secret is None else resolve_secret(self.password_secret, environ)


def tls_context(ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None,
                min_version: str = "1.2") -> ssl.SSLContext:
    """A client TLS context (shared by the gate and the admin CLI). OSError/ssl.SSLError when a file
    is missing or unreadable."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate and its key go together")
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx
