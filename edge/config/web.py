"""The `[web]` section: where the guards' page listens and how its sessions behave."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator

from edge.config.base import Section


class WebConfig(Section):
    enabled: bool = Field(True, description="Serve the guards' status page from the gate process.")
    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 exposes the page to the network "
                      "(put TLS in front and set secure_cookies).", min_length=1)
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the page (0: any free port, for tests).")
    session_hours: float = Field(12.0, gt=0, le=24 * 14, description="A guard's login expires after this long.")
    login_attempts_per_minute: int = Field(20, ge=1, le=1000, description="Wrong passwords one client address "
                                           "may send per minute, whatever names it tries; more get HTTP 429.")
    login_free_failures: int = Field(5, ge=1, le=100, description="Wrong passwords for one name from one address "
                                     "before each further one doubles the wait (1 s, 2 s, 4 s ...). Failures "
                                     "from elsewhere never lock a guard out of another terminal.")
    login_max_backoff_s: float = Field(900.0, ge=1, le=86_400, description="The longest wait of that backoff.")
    login_failures_global_per_minute: int = Field(100, ge=1, le=100_000, description="Wrong passwords from all "
                                                  "addresses together per minute; above it, addresses that "
                                                  "failed themselves wait (addresses with no failure do not).")
    trusted_proxies: list[str] = Field(default_factory=list, description="Addresses or networks (CIDR) of "
                                       "reverse proxies whose X-Forwarded-For / Forwarded header is believed; "
                                       "empty: the header is ignored and the TCP peer is the client.")
    proxy_header: Literal["x-forwarded-for", "forwarded"] = Field("x-forwarded-for", description="The header "
                                                                   "the trusted proxy writes (only that one "
                                                                   "is read; the other is ignored).")
    public_origin: str | None = Field(None, description="The page's address as browsers see it behind a "
                                      "proxy (e.g. https://gate.example.org); login posts must come from "
                                      "it. Unset: the request's Host header.", max_length=200)
    viewers_may_acknowledge: bool = Field(False, description="Let guards with the viewer role acknowledge "
                                          "(silence) alarms; by default only operators may.")
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="Page language when neither the guard's choice "
                                             "nor the browser's Accept-Language decides.")
    secure_cookies: bool = Field(False, description="Mark cookies Secure (set when the page is served over TLS).")
    max_events_page: int = Field(100, ge=1, le=1000, description="Events (and alarms, persons) per page.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """`["10.0.0.5", "192.168.1.0/24", "::1"]` -> networks; ValueError names a bad entry."""
    out: list[Network] = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)") from exc
    return out
