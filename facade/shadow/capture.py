"""A bounded copy of the primary's answer, taken while it streams to the client.

The proxy hands each piece of the primary's response to ``Capture`` as it writes it to
the client: the piece is kept by reference (bytes are immutable: nothing is copied),
up to ``limit`` bytes; past that the capture lets go of what it holds and only counts,
and the pair is dropped as too large to compare. Nothing here can raise into, or
wait on, the request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("strangler.shadow")

Headers = list[tuple[bytes, bytes]]
Raw = tuple[int, Headers, bytes]  # status, headers as sent, body


class Capture:
    __slots__ = ("_done", "_headers", "_limit", "_over", "_pieces", "_size", "_status")

    def __init__(self, limit: int, done: Callable[[Raw | None, str], None]) -> None:
        self._limit = limit
        self._done = done  # (answer, "") or (None, why)
        self._status = 0
        self._headers: Headers = []
        self._pieces: list[bytes] = []
        self._size = 0
        self._over = False

    def head(self, status: int, headers: Headers) -> None:
        self._status = status
        self._headers = headers

    def body(self, data: bytes) -> None:
        if self._over:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._over = True
            self._pieces = []
        else:
            self._pieces.append(data)

    def whole(self, status: int, headers: Headers, body: bytes) -> None:
        """An answer made in one piece (a Lambda's, or the facade's own)."""
        self.head(status, headers)
        self.body(body)

    def finished(self) -> None:
        if self._over:
            self._report(None, "body")
            return
        pieces = self._pieces
        self._report(
            (self._status, self._headers, pieces[0] if len(pieces) == 1 else b"".join(pieces)), ""
        )

    def failed(self) -> None:
        """The primary failed (the facade answered 502/504 itself): nothing to compare."""
        self._report(None, "primary_failed")

    def _report(self, answer: Raw | None, why: str) -> None:
        try:
            self._done(answer, why)
        except Exception:  # the shadow's trouble never reaches the request path
            log.exception("the shadow comparison could not take the primary's answer")


__all__ = ["Capture", "Raw"]
