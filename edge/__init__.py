"""edge-gate: the gate daemon package."""

__version__ = "0.1.0"
