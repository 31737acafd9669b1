"""The `[web]` section: where the guards' page listens and how its sessions behave."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class WebConfig(Section):
    enabled: bool = Field(True, description="Serve the guards' status page from the gate process.")
    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 exposes the page to the network "
                      "(put TLS in front and set secure_cookies).", min_length=1)
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the page (0: any free port, for tests).")
    session_hours: float = Field(12.0, gt=0, le=24 * 14, description="A guard's login expires after this long.")
    login_attempts_per_minute: int = Field(5, ge=1, le=1000, description="Login attempts allowed per minute, "
                                           "counted per client address and per guard name; more get HTTP 429.")
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="Page language when neither the guard's choice "
                                             "nor the browser's Accept-Language decides.")
    secure_cookies: bool = Field(False, description="Mark cookies Secure (set when the page is served over TLS).")
    max_events_page: int = Field(100, ge=1, le=1000, description="Events (and alarms, persons) per page.")
