"""Free loopback TCP ports (the broker runner's own helper, re-exported so that there is one)."""

from __future__ import annotations

from edge.tools.broker import free_port

__all__ = ["free_port"]
