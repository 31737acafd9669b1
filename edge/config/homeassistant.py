"""The `[homeassistant]` config section: Home Assistant MQTT discovery on the gate's broker link, and
the manual-open button (off unless asked for, and then only with a shared secret given by reference)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section
from edge.config.mqtt import SECRET_REF, SecretError, resolve_secret

MIN_SECRET_CHARS = 16


class HomeAssistantConfig(Section):
    enabled: bool = Field(False, description="Publish Home Assistant MQTT discovery configs (retained) on "
                          "the [mqtt] broker, on each connect and when Home Assistant's status topic says "
                          "`online`, and the small `ha/...` state topics they name. Needs [mqtt] enabled.")
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64})*$",
                                  description="Home Assistant's discovery prefix (its MQTT integration's "
                                  "setting); its birth messages come on {discovery_prefix}/status.")
    share_names: bool = Field(True, description="Put the person's name in the last decision's attributes "
                              "(false: the decision and reasons only). Never face data or scores.")
    alarm_hold_s: int = Field(60, ge=1, le=3600, description="How long the stranger and fever binary "
                              "sensors stay on after an alarm (Home Assistant's off_delay). The fire sensor "
                              "follows the fire release instead.")
    button_enabled: bool = Field(False, description="Offer a manual-open button in Home Assistant. Anyone who "
                                 "can publish its press with the secret opens the gate: keep the broker's ACL "
                                 "on the discovery and command topics to Home Assistant and this gate.")
    button_secret: str | None = Field(
        None, description="The button's shared secret as a reference, {env:NAME} or {cred:NAME} (a file in "
        "$CREDENTIALS_DIRECTORY), never the secret itself; at least 16 characters. Home Assistant sends it "
        "as the press payload.")
    button_min_interval_s: float = Field(5.0, ge=0.5, le=3600, description="At most one press (right or "
                                         "wrong) is looked at per this interval; the others are dropped "
                                         "and counted.")

    @field_validator("button_secret")
    @classmethod
    def _secret_ref(cls, v: str | None) -> str | None:
        if v is not None and not SECRET_REF.match(v.strip()):
            raise ValueError("button_secret must be a reference, {env:NAME} or {cred:NAME}, not the secret")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> HomeAssistantConfig:
        if self.button_enabled and self.button_secret is None:
            raise ValueError("button_enabled needs button_secret ({env:NAME} or {cred:NAME})")
        return self

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The button's secret resolved (None: no button). SecretError when it is missing or too short."""
        if not self.button_enabled or self.button_secret is None:
            return None
        value = resolve_secret(self.button_secret, environ)
        if len(value.strip()) < MIN_SECRET_CHARS:
            raise SecretError(f"{self.button_secret}: the button secret needs at least {MIN_SECRET_CHARS} "
                              "characters (make one with `openssl rand -hex 16`)")
        return value.strip()
