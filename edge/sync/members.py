"""MemberGates: the community's gates and their public keys, from the signed whitelist (a snapshot's
`gates`, or a delta's). A gate accepts a peer's passage event only when that peer is listed here and
the event verifies against its key. Kept in the store's meta table; read by the intake thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.protocol.signing import key_id, parse_public_key

log = logging.getLogger(__name__)
META_KEY = "member_gates"
Member = tuple[str, str]  # (gate_id, public key text)


class MemberGates:
    def __init__(self, members: Sequence[Member] = ()) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self.replace(members)

    @staticmethod
    def decode(text: str | None) -> list[Member]:
        """The members kept in the store's meta value (a JSON list); [] for none or unreadable."""
        if not text:
            return []
        try:
            rows = json.loads(text)
            return [(str(r["gate_id"]), str(r["public_key"])) for r in rows]
        except (ValueError, TypeError, KeyError) as exc:
            log.error("member gates in the store are unreadable (%s); no peer events accepted until the "
                      "next snapshot", exc)
            return []

    @staticmethod
    def encode(members: Sequence[Member]) -> str:
        return json.dumps([{"gate_id": g, "public_key": k} for g, k in members], separators=(",", ":"))

    def replace(self, members: Sequence[Member]) -> None:
        keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for gate_id, text in members:
            try:
                public = parse_public_key(text)
            except ValueError as exc:  # checked when the push was parsed; a store edited by hand
                log.error("member gate %s has an unusable key (%s); its events are refused", gate_id, exc)
                continue
            keys[gate_id] = (key_id(public), public)
        with self._lock:
            self._keys = keys

    def key(self, gate_id: str) -> dict[str, Ed25519PublicKey]:
        """The gate's key as a keyring ({key_id: key}); {} for a gate that is not a member."""
        with self._lock:
            entry = self._keys.get(gate_id)
        return {} if entry is None else {entry[0]: entry[1]}

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)
