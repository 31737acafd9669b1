"""The admin's gates file: the community's gates and their public keys (what `gate keys show --json`
prints on each gate). Snapshots carry it to every gate (so gates accept each other's events), and the
admin tools verify each gate's acks against it.

Format (JSON): `{"gates": [{"gate_id": "north-1", "public_key": "ed25519:<base64>"}, ...]}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.protocol.messages import MemberGate

SHAPE = 'expected {"gates": [{"gate_id": "...", "public_key": "ed25519:..."}]}'


class GatesFileError(ValueError):
    """The gates file cannot be used; the message names the file and the entry."""


def read_gates_file(path: Path) -> list[dict[str, str]]:
    """The member gates of `path`, checked (ids unique, keys valid); GatesFileError otherwise."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatesFileError(f"{path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise GatesFileError(f"{path}: not JSON ({exc}); {SHAPE}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("gates"), list):
        raise GatesFileError(f"{path}: {SHAPE}")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, row in enumerate(data["gates"], 1):
        try:
            gate = MemberGate.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise GatesFileError(f"{path}: gate {i}: {where}: {first['msg']}") from exc
        if gate.gate_id in seen:
            raise GatesFileError(f"{path}: gate {i}: {gate.gate_id} is listed twice")
        seen.add(gate.gate_id)
        out.append(gate.model_dump())
    return out


def gate_keys(gates: list[dict[str, str]]) -> dict[str, Ed25519PublicKey]:
    """{gate_id: public key} of a checked gates list."""
    from edge.protocol.signing import parse_public_key

    return {g["gate_id"]: parse_public_key(g["public_key"]) for g in gates}
