"""`StoreWriter`: one thread that runs the gate's store writes one after another, so the camera and
vision threads never wait on the disk; `close()` finishes what was submitted, then closes the store.

It also owns the store's health as the gate sees it: `error` is the last refusal of any write (an
event, an alarm, an audit row...), cleared once a write succeeds and nothing is waiting to be written
again. Writes submitted with `submit_kept` (events, alarms, audit rows) that the disk refuses (full,
file size limit, I/O error) are kept in memory, bounded, and written again, oldest first, by
`retry_kept()` (the supervisor calls it every pass) and at `close()`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from edge.store import Store, StoreError, StoreWriteError

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_KEPT = 10_000  # refused writes kept in memory (an event with its alarms is a few kB)

_Write = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", fn))


class StoreWriter:
    """Runs write callables one after another on a dedicated thread; `submit` never blocks on disk."""

    _STOP = object()

    def __init__(self, store: Store, name: str = "store-writer", max_kept: int = MAX_KEPT) -> None:
        self.store = store
        self.max_kept = max_kept
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._pending = 0
        self._kept: deque[_Write] = deque()  # touched only on the writer thread (len() read anywhere)
        self._retry_queued = False
        self.lost = 0  # kept writes dropped because the queue was full (each one logged)
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Writes submitted but not finished (a health figure)."""
        return self._pending

    @property
    def kept(self) -> int:
        """Writes the disk refused, kept in memory to be written again."""
        return len(self._kept)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self._put(fn, args, kwargs, keep=False)

    def submit_kept(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Like `submit`, but if the disk refuses the write (StoreWriteError) it is kept and written again
        later; the future still reports the first attempt. Only for writes that may be repeated once
        refused (a refused transaction was rolled back, so nothing of it is in the store)."""
        return self._put(fn, args, kwargs, keep=True)

    def retry_kept(self) -> None:
        """Write the kept writes again (on the writer thread), oldest first, stopping at the first refusal."""
        with self._lock:
            if not self._kept or self._retry_queued or self._closed:
                return
            self._retry_queued = True
            self._pending += 1
            self._queue.put((None, self._drain_kept, (), {}, False))

    def _put(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], keep: bool) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the store writer is closed")
            self._pending += 1
            self._queue.put((future, fn, args, kwargs, keep))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            future, fn, args, kwargs, keep = item
            try:
                if future is None:  # a retry pass
                    fn()
                elif future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        self._failed(fn, args, kwargs, exc, keep)
                        future.set_exception(exc)
                    else:
                        if not self._kept:
                            self.error = None
                        future.set_result(result)
            finally:
                with self._lock:
                    self._pending -= 1

    def _failed(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException,
                keep: bool) -> None:
        if isinstance(exc, StoreError):
            self.error = str(exc)
        if not (keep and isinstance(exc, StoreWriteError)):
            log.error("store write %s failed: %s", _name(fn), exc)
            return
        if len(self._kept) >= self.max_kept:
            dropped_fn, dropped_args, _ = self._kept.popleft()
            self.lost += 1
            log.error("store write %s%r LOST: %d refused writes are kept in memory already, the oldest goes",
                      _name(dropped_fn), dropped_args[:1], self.max_kept)
        self._kept.append((fn, args, kwargs))
        log.error("store write %s failed: %s; kept in memory and written again once the store accepts "
                  "writes (%d waiting)", _name(fn), exc, len(self._kept))

    def _drain_kept(self) -> None:
        written = 0
        try:
            while self._kept:
                fn, args, kwargs = self._kept[0]
                try:
                    fn(*args, **kwargs)
                except StoreWriteError as exc:  # still refused: keep it (and the rest) for the next pass
                    self.error = str(exc)
                    break
                except Exception as exc:  # e.g. it was stored after all (duplicate id): nothing to keep
                    log.error("kept store write %s failed again and is dropped: %s", _name(fn), exc)
                else:
                    written += 1
                self._kept.popleft()
            else:
                self.error = None
        finally:
            with self._lock:
                self._retry_queued = False
        if written:
            log.info("store accepts writes again: %d kept writes written, %d still waiting", written,
                     len(self._kept))

    def close(self, timeout: float | None = None) -> None:
        """Finish every write submitted so far (and try the kept ones once more), stop the thread, close
        the store. `timeout` bounds a stall, not the whole drain: while writes still complete, close keeps
        waiting (a backlog after an overload is written, not dropped); it gives up only when no write has
        finished for `timeout` seconds (a hung disk)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending += 1
            self._queue.put((None, self._drain_kept, (), {}, False))
            self._queue.put(self._STOP)
        if timeout is None:
            self._thread.join()
        else:
            last = self._pending
            while True:
                self._thread.join(timeout)
                if not self._thread.is_alive() or self._pending >= last:
                    break
                log.warning("store writer still draining at close: %s writes pending", self._pending)
                last = self._pending
        if self._thread.is_alive():
            log.error("store writer made no progress for %s s; %s writes pending are lost", timeout, self._pending)
            return
        if self._kept:
            log.error("store closed with %d refused writes not written (the disk still refuses them)",
                      len(self._kept))
        self.store.close()
