"""Publishing a whitelist push on the broker and collecting the gates' acks of it.

Community-wide pushes keep the latest delta and the `whitelist/current` pointer retained, so a gate
that was offline catches up (see push).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from edge.admin.build import json_object, payload_version
from edge.admin.client import AdminClient
from edge.protocol.payloads import CURRENT_SCHEMA


def push(client: AdminClient, community: str, kind: str, payloads: list[bytes], version: int | None = None,
         gate: str | None = None, wait_acks: int = 0, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Publish a push from build_push; collect the gates' acks of its last version (one per gate).

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
        pointer = {"schema": CURRENT_SCHEMA, "version": final, "issued_at": datetime.now(UTC).isoformat()}
        client.publish(f"{client.prefix}/{community}/whitelist/current", json.dumps(pointer).encode(), retain=True)
    acks: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + timeout
    seen = since
    while len(acks) < wait_acks and (left := end - time.monotonic()) > 0:
        msgs = client.wait(seen + 1, left)
        retained = client.retained_flags()
        for i in range(seen, len(msgs)):
            ack = json_object(msgs[i][1])
            # a retained ack is an old answer; an `outdated` one answers the pointer, not this push
            if (ack is not None and not retained[i] and ack.get("version") == final
                    and ack.get("kind") == kind and isinstance(ack.get("gate"), str)):
                acks[ack["gate"]] = ack
        seen = len(msgs)
    return list(acks.values())
