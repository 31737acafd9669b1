"""The store's errors: what it refused or failed, and why."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store refused or failed an operation; the message says which and why."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer edge-gate (a higher schema version than this code knows)."""



class StoreWriteError(StoreError):
    """The disk refused a write (I/O error, file size limit): the write was rolled back."""


class StoreFullError(StoreWriteError):
    """The disk (or the configured size limit) is full: the write was rolled back, older data is intact."""
