"""Who is on the other end of a request: the TCP peer, and the address a proxy forwarded for, believed only
when the peer is one of `[web] trusted_proxies`. uvicorn's own proxy-header handling is switched off (it
trusts loopback by default, so any local client could claim any address)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


class AddressResolver:
    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.trusted = parse_networks(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> ClientAddress:
        """The right-most address in `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a trusted
        proxy, when the peer is trusted; otherwise the peer alone (the headers are ignored)."""
        peer = peer or "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return ClientAddress(peer)
        chain = _forwarded_chain(headers)
        for hop in reversed(chain):
            if not self._is_trusted(hop):
                return ClientAddress(peer, hop)
        return ClientAddress(peer, chain[0] if chain else None)


def _forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The client addresses of `Forwarded` (RFC 7239) or else `X-Forwarded-For`, first hop first; entries
    that are not IP addresses are dropped."""
    hops: list[str] = []
    forwarded = headers.get("forwarded")
    if forwarded:
        for element in forwarded.split(","):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.lower() == "for":
                    hops.append(_bare(value.strip().strip('"')))
    else:
        hops = [_bare(part.strip()) for part in (headers.get("x-forwarded-for") or "").split(",")]
    return [h for h in hops if _is_ip(h)]


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
