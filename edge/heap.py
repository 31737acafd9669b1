"""Hand freed heap memory back to the operating system after the gate's large one-off allocations (loading
the models, loading or swapping a whitelist). glibc keeps freed blocks in its arenas otherwise, so a gate's
resident memory would stay at its start-up peak. A no-op where the C library has no malloc_trim."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_heap() -> bool:
    """Return freed heap pages to the OS; True if the C library could (glibc's malloc_trim)."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
