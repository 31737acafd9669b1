"""Ed25519 signatures over canonical JSON: how an admin signs a whitelist push and a gate checks it.

Canonical JSON here: UTF-8, keys sorted, no insignificant whitespace, no NaN/Infinity, and the
`signature` member itself left out. The signature block names the key by id (the first 16 hex
digits of the SHA-256 of the raw public key), so a gate can hold several admin keys and rotate them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FIELD = "signature"


class SignatureError(ValueError):
    """A payload is unsigned, signed by an unknown key, or its signature does not verify."""


def canonical_json(payload: dict[str, Any]) -> bytes:
    body = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form a gate's config holds: `ed25519:<base64 raw key>`."""
    return "ed25519:" + base64.b64encode(_raw_public(key)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if not text.startswith("ed25519:"):
        raise ValueError("admin public keys look like 'ed25519:<base64 of 32 bytes>'")
    try:
        raw = base64.b64decode(text.split(":", 1)[1], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"not an Ed25519 public key ({exc})") from exc


@dataclass(frozen=True)
class AdminKey:
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> AdminKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> AdminKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def save(self, path: Path) -> None:
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=False)
        path.write_bytes(pem)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A copy of `payload` with its signature block."""
        sig = self.private.sign(canonical_json(payload))
        signed = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
        signed[SIGNATURE_FIELD] = {"alg": "ed25519", "key_id": self.key_id,
                                   "value": base64.b64encode(sig).decode("ascii")}
        return signed


def verify(payload: dict[str, Any], trusted: list[Ed25519PublicKey]) -> str:
    """Check the payload's signature against the trusted admin keys; return the signing key's id."""
    block = payload.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        raise SignatureError("unsigned payload")
    if block.get("alg") != "ed25519":
        raise SignatureError(f"unsupported signature algorithm {block.get('alg')!r}")
    by_id = {key_id(k): k for k in trusted}
    kid = block.get("key_id")
    if not isinstance(kid, str) or kid not in by_id:
        raise SignatureError(f"signed by unknown key {kid!r}")
    try:
        sig = base64.b64decode(str(block.get("value", "")), validate=True)
        by_id[kid].verify(sig, canonical_json(payload))
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc
    return kid
