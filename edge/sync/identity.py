"""The gate's own identity: its Ed25519 key, which signs everything the gate publishes (events, alarms,
state, acks), and `seal`, which turns a document into the signed JSON text sent on the broker.

Where the key lives, first match wins:
1. `$CREDENTIALS_DIRECTORY/gate-key` (systemd `LoadCredential=gate-key:/etc/edge-gate/gate-key.pem`);
2. `[mqtt] gate_key_file`;
3. `{data_dir}/gate-key.pem`, made at the first start if missing (`gate keys init` makes it ahead).
The private key is never in the config file; a key file another user may read is refused.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.protocol.payloads import V1_SCHEMAS
from edge.protocol.signing import CanonicalError, SigningKey

log = logging.getLogger(__name__)
CREDENTIAL_NAME = "gate-key"
DEFAULT_FILE = "gate-key.pem"


class GateKeyError(ValueError):
    """The gate's key cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class GateIdentity:
    key: SigningKey
    path: Path
    created: bool = False  # made just now


def key_path(configured: Path | None, data_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """(the key file to use, whether it is a systemd credential)."""
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).exists():
        return Path(cred_dir) / CREDENTIAL_NAME, True
    return (configured if configured is not None else data_dir / DEFAULT_FILE), False


def load_identity(configured: Path | None, data_dir: Path, *, create: bool = True,
                  environ: Mapping[str, str] | None = None) -> GateIdentity:
    """The gate's key; made (mode 0600) when it is missing and `create`. GateKeyError otherwise."""
    path, credential = key_path(configured, data_dir, environ)
    if not path.exists():
        if not create or credential:
            raise GateKeyError(f"no gate key at {path}; make one with `gate keys init`")
        key = SigningKey.generate()
        try:
            key.save(path)
        except FileExistsError:  # another process made it first: use that one
            return load_identity(configured, data_dir, create=False, environ=environ)
        except OSError as exc:
            raise GateKeyError(f"cannot write the gate key {path}: {exc.strerror or exc}") from exc
        log.warning("made a new gate key %s (key id %s); register %s with the community admin (`gate keys show`)",
                    path, key.key_id, key.public_text)
        return GateIdentity(key, path, created=True)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise GateKeyError(f"cannot read the gate key {path}: {exc.strerror or exc}") from exc
    if not credential and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GateKeyError(f"gate key {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                           f"run: chmod 600 {path}")
    try:
        return GateIdentity(SigningKey.load(path), path)
    except OSError as exc:
        raise GateKeyError(f"cannot read the gate key {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise GateKeyError(f"gate key {path}: {' '.join(str(exc).split())}; move it away and run "
                           "`gate keys init`") from exc


MAX_SAFE_INT = 2**53 - 1


def jcs_safe(value: Any) -> Any:
    """`value` with what RFC 8785 cannot write made writable: integers beyond +-(2**53 - 1) become
    floats (what any JSON reader in JavaScript makes of them anyway), NaN and infinities null."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else float(value)
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): jcs_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jcs_safe(v) for v in value]
    return str(value)


def seal(key: SigningKey, doc: Mapping[str, Any]) -> str:
    """The signed JSON text of a document the gate publishes. A value RFC 8785 cannot write (an integer
    beyond 2**53) is written as JavaScript would read it (jcs_safe) rather than not sent at all."""
    try:
        signed = key.sign(doc)
    except CanonicalError:
        signed = key.sign(jcs_safe(doc))
    return json.dumps(signed, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def seal_row(key: SigningKey, payload: str) -> str:
    """An outbox row's JSON text, signed; a row queued by a v1 gate is sent as v2 (the fields are the
    same). ValueError when the row is not a JSON object or has no canonical form."""
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("outbox row is not a JSON object")
    if doc.get("schema") in V1_SCHEMAS:
        doc["schema"] = V1_SCHEMAS[doc["schema"]]
    try:
        return seal(key, doc)
    except (CanonicalError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
