#!/usr/bin/env python3
"""Rewrite docs/protocol/test-vectors.json from edge.protocol.vectors (a test checks it is in step)."""

from edge.protocol.vectors import VECTORS_FILE, vectors_text

if __name__ == "__main__":
    VECTORS_FILE.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_FILE.write_text(vectors_text(), encoding="utf-8")
    print(VECTORS_FILE)
