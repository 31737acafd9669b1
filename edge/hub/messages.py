"""The signed pushes the hub publishes: the delta of one register change, and a snapshot of the whole
register (for a gate that asks, or for every gate), chunked to the gates' limits (edge.admin.build)."""

from __future__ import annotations

from datetime import datetime, timedelta

from edge.admin.build import build_push
from edge.hub.register import Change, Register
from edge.protocol.signing import SigningKey


def delta_payload(key: SigningKey, community: str, change: Change, *, valid_for: timedelta,
                  now: datetime | None = None) -> bytes:
    """The delta of one change: version `change.version` on the version before it."""
    body = change.body
    out = build_push(key, community, "delta", list(body.get("upserts") or []), list(body.get("deletes") or []),
                     version=change.version, base_version=change.version - 1, valid_for=valid_for, now=now,
                     gates=body.get("gates"), patches=list(body.get("patches") or []))
    if len(out) != 1:  # the register keeps changes small (imports are split); never expected
        raise ValueError(f"change {change.version} does not fit one message ({len(out)} parts)")
    return out[0]


def snapshot_payloads(key: SigningKey, community: str, register: Register, *, gate: str | None,
                      valid_for: timedelta, now: datetime | None = None) -> list[bytes]:
    """The whole register at its current version, in chunks; [] while the register is empty of changes."""
    version = register.version
    if version < 1:
        return []
    return build_push(key, community, "snapshot", register.persons(), [], version=version, gate=gate,
                      valid_for=valid_for, now=now, gates=register.gates())
