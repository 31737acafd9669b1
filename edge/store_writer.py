"""`StoreWriter`: one thread that runs the gate's store writes one after another, so the camera and
vision threads never wait on the disk; `close()` finishes what was submitted, then closes the store."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from edge.store import Store, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreWriter:
    """Runs write callables one after another on a dedicated thread; `submit` never blocks on disk."""

    _STOP = object()

    def __init__(self, store: Store, name: str = "store-writer") -> None:
        self.store = store
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Writes submitted but not finished (a health figure)."""
        return self._pending

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the store writer is closed")
            self._pending += 1
            self._queue.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            future, fn, args, kwargs = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:
                        log.error("store write %s failed: %s", getattr(fn, "__name__", fn), exc)
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= 1

    def close(self, timeout: float | None = None) -> None:
        """Finish every write submitted so far, stop the thread, close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(self._STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("store writer did not finish within %s s; %s writes pending", timeout, self._pending)
            return
        self.store.close()
