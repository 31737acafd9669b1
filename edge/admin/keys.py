"""A new admin signing key: the private key file for the admin's desk, the public key text for the gates."""

from __future__ import annotations

from pathlib import Path

from edge.protocol.signing import AdminKey, public_key_text


def keygen(out: Path) -> str:
    """Write a new admin private key (PEM, mode 0600); return the public key text for gate configs."""
    key = AdminKey.generate()
    key.save(out)
    return public_key_text(key.public)
