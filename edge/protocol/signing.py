"""Ed25519 signatures over RFC 8785 canonical JSON: how an admin (or the hub) signs a whitelist push,
how a gate signs everything it publishes, and how either side checks a signature.

The wire rules (docs/protocol.md, "Signatures"):
- The signed bytes are the RFC 8785 (JCS) serialisation of the message with its `signature` member
  removed, as UTF-8. JCS fixes key order (UTF-16 code units), number text (ECMAScript: `1e-7`, `3`
  for 3.0) and string escapes, so any language's JCS gives the same bytes.
- `signature` is `{"alg": "ed25519", "key_id": <16 hex>, "value": <standard base64 of 64 bytes>}`.
- A public key's text is `ed25519:<standard base64 of the 32 raw bytes>`; its `key_id` is the first
  16 lowercase hex digits of the SHA-256 of those 32 raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FIELD = "signature"
KEY_PREFIX = "ed25519:"


class SignatureError(ValueError):
    """A payload is unsigned, signed by an unknown key, or its signature does not verify."""


class CanonicalError(ValueError):
    """A value has no RFC 8785 form: NaN or infinity, an integer beyond +-(2**53 - 1), a non-string key,
    a type JSON does not have. Such a message can be neither signed nor verified."""


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The RFC 8785 bytes of `payload` without its `signature` member."""
    body = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
    try:
        return rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise CanonicalError(f"no canonical JSON form: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalError("no canonical JSON form: nested too deeply") from exc


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The text form of a public key (configs, the whitelist's member gates): `ed25519:<base64 raw key>`."""
    return KEY_PREFIX + base64.b64encode(raw_public(key)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The key of an `ed25519:<base64 of 32 bytes>` text; ValueError saying what is wrong."""
    text = text.strip() if isinstance(text, str) else ""
    if not text.startswith(KEY_PREFIX):
        raise ValueError("public keys look like 'ed25519:<base64 of 32 bytes>'")
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX):], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(f"not an Ed25519 public key ({exc})") from exc


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key: the admin's or the hub's (pushes), or a gate's own (everything it publishes)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """OSError when unreadable; ValueError when not an unencrypted Ed25519 PEM key."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except TypeError as exc:  # encrypted
            raise ValueError(f"{path} is encrypted; give an unencrypted key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key as PEM, mode 0600, never over an existing file (FileExistsError)."""
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a folder made for a key is private
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def public_text(self) -> str:
        return public_key_text(self.public)

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `payload` with its signature block (CanonicalError when it has no JCS form)."""
        sig = self.private.sign(canonical_json(payload))
        signed = {k: v for k, v in payload.items() if k != SIGNATURE_FIELD}
        signed[SIGNATURE_FIELD] = {"alg": "ed25519", "key_id": self.key_id,
                                   "value": base64.b64encode(sig).decode("ascii")}
        return signed


AdminKey = SigningKey  # the admin's desk key (the name the admin tools use)


def keyring(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    return {key_id(k): k for k in keys}


def verify(payload: Mapping[str, Any], trusted: Iterable[Ed25519PublicKey] | Mapping[str, Ed25519PublicKey]) -> str:
    """Check the payload's signature against the trusted keys (a list, or a keyring by key id); return
    the signing key's id. SignatureError for anything wrong."""
    block = payload.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        raise SignatureError("unsigned payload")
    if block.get("alg") != "ed25519":
        raise SignatureError(f"unsupported signature algorithm {block.get('alg')!r}")
    by_id = trusted if isinstance(trusted, Mapping) else keyring(trusted)
    kid = block.get("key_id")
    if not isinstance(kid, str) or kid not in by_id:
        raise SignatureError(f"signed by unknown key {str(kid)[:40]!r}")
    value = block.get("value")
    if not isinstance(value, str):
        raise SignatureError("signature value is not base64 text")
    try:
        sig = base64.b64decode(value, validate=True)
        by_id[kid].verify(sig, canonical_json(payload))
    except CanonicalError as exc:
        raise SignatureError(f"signature cannot be checked: {exc}") from exc
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc
    return kid
