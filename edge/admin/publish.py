"""Publishing a whitelist push on the broker and collecting the gates' acks of it.

Community-wide pushes keep the latest delta and the `whitelist/current` pointer retained, so a gate
that was offline catches up (see push).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.admin.build import json_object, payload_version
from edge.admin.client import AdminClient
from edge.protocol.limits import MAX_ACK_NOTES
from edge.protocol.payloads import CURRENT_SCHEMA
from edge.protocol.signing import SignatureError, verify
from edge.records import ts_text

log = logging.getLogger(__name__)


def ack_verifies(ack: Mapping[str, Any], gate_keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """The ack is signed by the key of the gate it names."""
    gate = ack.get("gate")
    key = gate_keys.get(gate) if isinstance(gate, str) else None
    if key is None:
        return False
    try:
        verify(ack, [key])
    except SignatureError:
        return False
    return True


NOTE_TEXT = {"not_found": "did not have {n} of the deleted person(s) (the delete changed nothing there)"}


def ack_notes_text(ack: Mapping[str, Any]) -> list[str]:
    """One line per kind of note in a gate's ack, for people (`gate admin push` prints them)."""
    notes = ack.get("notes")
    if not isinstance(notes, list):
        return []
    by_code: dict[str, list[str]] = {}
    for note in notes:
        if isinstance(note, dict):
            by_code.setdefault(str(note.get("code")), []).append(str(note.get("id")))
    more = f" (the first {MAX_ACK_NOTES}: {ack.get('message')})" if len(notes) >= MAX_ACK_NOTES else ""
    return [f"note: gate {ack.get('gate')} " + NOTE_TEXT.get(code, code + " for {n} person(s)").format(n=len(ids))
            + f": {', '.join(ids)}{more}" for code, ids in by_code.items()]


def push(client: AdminClient, community: str, kind: str, payloads: list[bytes], version: int | None = None,
         gate: str | None = None, wait_acks: int = 0, timeout: float = 30.0,
         gate_keys: Mapping[str, Ed25519PublicKey] | None = None) -> list[dict[str, Any]]:
    """Publish a push from build_push; collect the gates' acks of its last version (one per gate).

    Only acks signed by the key of the gate they name (`gate_keys`, from the gates file) and naming
    one of these payloads by `push_digest` count; anything else on the ack topics is ignored (logged).

    Community-wide pushes also keep the community's state on the broker for gates that are offline:
    each delta is published retained (with a message expiry at its `expires_at`), so the latest one
    waits for them; a snapshot clears that retained delta (the snapshot supersedes it); and the
    retained `whitelist/current` pointer names the newest version. A gate coming back applies the
    retained delta if it builds on its version, else asks for a snapshot (see edge.sync.whitelist).
    `version`, if given, must be the first payload's (a split delta's later parts count up from it).
    """
    if not payloads:
        raise ValueError("nothing to push")
    if version is not None and version != payload_version(payloads[0]):
        raise ValueError(f"version {version} is not the version of the payloads ({payload_version(payloads[0])})")
    final = payload_version(payloads[-1])
    community_wide = gate is None
    base = f"{client.prefix}/{community}" + (f"/{gate}" if gate else "")
    since = client.received()
    client.subscribe([f"{client.prefix}/{community}/+/whitelist/ack"])
    for payload in payloads:
        expiry = None
        if kind == "delta" and community_wide:
            expires = datetime.fromisoformat(str((json_object(payload) or {})["expires_at"]))
            expiry = int((expires - datetime.now(UTC)).total_seconds())
        client.publish(f"{base}/whitelist/{kind}", payload, retain=expiry is not None, expiry_s=expiry)
    if community_wide:
        if kind == "snapshot":
            client.publish(f"{base}/whitelist/delta", b"", retain=True)  # clears the retained delta
        pointer = {"schema": CURRENT_SCHEMA, "version": final, "issued_at": ts_text(datetime.now(UTC))}
        client.publish(f"{client.prefix}/{community}/whitelist/current", json.dumps(pointer).encode(), retain=True)
    if wait_acks and not gate_keys:
        raise ValueError("acks are verified against the gates' keys: give the gates file")
    keys = gate_keys or {}
    digests = {hashlib.sha256(p).hexdigest() for p in payloads}
    acks: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + timeout
    seen = since
    while len(acks) < wait_acks and (left := end - time.monotonic()) > 0:
        msgs = client.wait(seen + 1, left)
        retained = client.retained_flags()
        for i in range(seen, len(msgs)):
            ack = json_object(msgs[i][1])
            # a retained ack is an old answer; an `outdated` one answers the pointer, not this push
            if (ack is None or retained[i] or ack.get("version") != final or ack.get("kind") != kind
                    or ack.get("push_digest") not in digests):
                continue
            if not ack_verifies(ack, keys):
                log.warning("ignored an ack on %s that is not signed by the key of gate %r", msgs[i][0],
                            ack.get("gate"))
                continue
            acks[str(ack["gate"])] = ack
        seen = len(msgs)
    return list(acks.values())
