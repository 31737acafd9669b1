"""Who is on the other end of a request: the TCP peer, and the address a proxy forwarded for, believed only
when the peer is one of `[web] trusted_proxies`. uvicorn's own proxy-header handling is switched off (it
trusts loopback by default, so any local client could claim any address)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from edge.config.web import parse_networks


@dataclass(frozen=True)
class ClientAddress:
    peer: str  # the TCP peer: what the audit log always records
    forwarded: str | None = None  # the client a trusted proxy named, if any

    @property
    def effective(self) -> str:
        """The address limits and logs go by: the forwarded one when a trusted proxy sent it."""
        return self.forwarded or self.peer

    def audit(self) -> dict[str, str]:
        return {"ip": self.peer, **({"forwarded_for": self.forwarded} if self.forwarded else {})}


class HeaderLines(Protocol):
    """Request headers with every line of a repeated header (Starlette's `Headers`)."""

    def getlist(self, key: str) -> list[str]: ...


class AddressResolver:
    def __init__(self, trusted: Iterable[str] = (), header: str = "x-forwarded-for") -> None:
        self.trusted = parse_networks(trusted)
        self.header = header.lower()  # the one header the trusted proxy writes; the other is never read

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str | None, headers: HeaderLines) -> ClientAddress:
        """When the peer is a trusted proxy: walking the proxy header (every line of it, in order) from the
        right, the first address that is not itself a trusted proxy. A hop that is not an address ends the
        walk with no forwarded address (the peer alone), so a client cannot slip its own claim past an
        entry a proxy wrote. Otherwise the peer alone: the headers are ignored."""
        peer = peer or "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return ClientAddress(peer)
        for hop in reversed(_chain(headers, self.header)):
            if hop is None:
                return ClientAddress(peer)
            if not self._is_trusted(hop):
                return ClientAddress(peer, hop)
        return ClientAddress(peer)


def _chain(headers: HeaderLines, header: str) -> list[str | None]:
    """The hops of `X-Forwarded-For` or of `Forwarded` (RFC 7239, its `for=` parameters), first hop
    first, from all lines of the header; None for a hop that is not an IP address."""
    text = ",".join(headers.getlist(header))
    if not text.strip():
        return []
    hops: list[str | None] = []
    for element in text.split(","):
        if header == "forwarded":
            values = [v for k, _, v in (p.strip().partition("=") for p in element.split(";")) if k.lower() == "for"]
            raw = values[0].strip().strip('"') if values else ""
        else:
            raw = element.strip()
        hop = _bare(raw)
        hops.append(hop if _is_ip(hop) else None)
    return hops


def _bare(value: str) -> str:
    """`[2001:db8::1]:4711` -> `2001:db8::1`, `192.0.2.1:80` -> `192.0.2.1`."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
