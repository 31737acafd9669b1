"""Documents as a gate sends them: signed by a gate key (the applier and the store make them unsigned;
the network side signs each one as it goes out, edge.sync.identity.seal)."""

from __future__ import annotations

import json
from typing import Any

from edge.protocol.signing import SigningKey
from edge.sync.identity import seal

GATE_KEY = SigningKey.generate()


def signed(doc: dict[str, Any] | str, key: SigningKey = GATE_KEY) -> dict[str, Any]:
    """`doc` (a dict, or JSON text such as an outbox row) signed, as parsed back from the wire."""
    body = json.loads(doc) if isinstance(doc, str) else doc
    return dict(json.loads(seal(key, body)))
