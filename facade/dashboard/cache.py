"""A figure that is slow to read (subprocesses, SQS), read on a thread and kept a few
seconds: a page asking every second gets the last reading at once, and at most one
reading is under way at a time. The event loop never waits for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    value: T | None  # None: nothing read yet, or the last reading failed
    error: str | None  # why the last reading failed
    age: float | None  # seconds since the last reading finished; None: none yet


class Cached(Generic[T]):
    def __init__(
        self,
        read: Callable[[], T],
        max_age: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.max_age = max_age
        self.clock = clock
        self._value: T | None = None
        self._error: str | None = None
        self._at: float | None = None
        self._running: asyncio.Future[T] | None = None

    def get(self, loop: asyncio.AbstractEventLoop) -> Reading[T]:
        """The last reading; starts a new one on a thread when it is older than
        ``max_age`` (or there is none) and none is under way."""
        now = self.clock()
        stale = self._at is None or now - self._at >= self.max_age
        if stale and self._running is None:
            self._running = loop.run_in_executor(None, self.read)
            self._running.add_done_callback(self._done)
        return Reading(self._value, self._error, None if self._at is None else now - self._at)

    def _done(self, future: asyncio.Future[T]) -> None:
        self._running = None
        self._at = self.clock()
        if future.cancelled():
            self._error = "the reading was cancelled"
            return
        exc = future.exception()
        if exc is not None:
            self._value, self._error = None, f"{type(exc).__name__}: {exc}"
        else:
            self._value, self._error = future.result(), None


__all__ = ["Cached", "Reading"]
