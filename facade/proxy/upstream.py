"""Pooled keep-alive HTTP/1.1 connections to HTTP backends.

A request is written to an idle pooled connection as raw bytes; the response is parsed
with httptools and handed back through the ``Exchange`` callbacks as it arrives
(headers, body pieces, end), with no task, future or timer per request: read timeouts
are enforced by a periodic ``sweep`` over the connections in flight. A connection goes
back to its pool after a complete response when both sides allow keep-alive; one the
backend closed while idle leaves the pool as soon as the close arrives, and one idle
longer than ``idle_timeout`` (backends close theirs: gunicorn after 5 s) is not reused.

What can never happen is a connection carrying one request's answer into the next
exchange: an interim (1xx) response is reported or skipped, never taken for the end of
the exchange (llhttp reports it as a complete message); a connection goes back to the
pool only once the parser has returned, and only if nothing arrived after the end of the
response; bytes arriving on an idle connection close it; a connection whose reading was
paused for a slow client is resumed before it is pooled; a response delimited by the
backend closing the connection ends the exchange normally when the close arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Protocol, cast

import httptools

# ALB's limit on a target's response head; a larger one is a 502
MAX_RESPONSE_HEAD = 32 * 1024


class Exchange(Protocol):
    """What a connection reports back to the request it carries."""

    def upstream_headers(
        self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool
    ) -> None: ...
    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def upstream_body(self, data: bytes) -> None: ...
    def upstream_done(self) -> None: ...
    def upstream_failed(self, kind: str, detail: str, retryable: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_chunked",
        "_exchange",
        "_got_bytes",
        "_head",
        "_head_size",
        "_headers",
        "_interim",
        "_keep_alive",
        "_length",
        "_parser",
        "_poisoned",
        "_release",
        "_until_close",
        "idle_since",
        "last_activity",
        "paused",
        "pool",
        "reused",
        "timeout",
        "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: Exchange | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._head = False
        self._got_bytes = False
        self._chunked = False
        self._length = False
        self._head_size = 0
        self._interim = False
        self._until_close = False
        self._release = False  # the response ended during this feed: pool it afterwards
        self._keep_alive = False
        self._poisoned = False  # bytes that belong to no exchange: never reuse
        self.paused = False
        self.timeout = 0.0
        self.idle_since = 0.0
        self.last_activity = 0.0
        self.reused = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._exchange is None:  # nobody asked: whatever this is, it must not be reused
            self._poisoned = True
            if self.transport is not None:
                self.transport.abort()
            return
        self._got_bytes = True
        self.last_activity = self.pool.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("bad_response", "the backend switched protocols unasked", False)
        except httptools.HttpParserError as exc:
            self._fail("bad_response", f"malformed response from backend: {exc}", False)
        if self._release:
            self._release = False
            self._settle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.forget(self)
        if self._exchange is not None:
            if self._until_close and exc is None:
                # the backend's close is the end of this response's body (RFC 9112 6.3)
                self._complete(keep_alive=False)
                return
            retryable = self.reused and not self._got_bytes
            self._fail("reset", "the backend closed the connection before answering", retryable)

    # -- httptools callbacks ------------------------------------------------------------
    # (no on_message_begin: each response's state is reset by ``send`` and, after an
    # interim response, by ``on_headers_complete``; a response nobody asked for is seen
    # by ``on_headers_complete``, which every message reaches)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        size = len(name)
        self._head_size += size + len(value) + 4
        if self._head_size > MAX_RESPONSE_HEAD:
            raise ValueError(f"the response head is over ALB's {MAX_RESPONSE_HEAD} bytes")
        if size == 17 and name.lower() == b"transfer-encoding":
            self._chunked = True
        elif size == 14 and name.lower() == b"content-length":
            self._length = True

    def on_headers_complete(self) -> None:
        exchange = self._exchange
        if exchange is None:
            self._poisoned = True
            return
        status = self._parser.get_status_code()
        if status < 200:
            # An interim response (103 Early Hints, 100 Continue, 102): the final one
            # follows on this connection, and llhttp's "message complete" for this one
            # must not end the exchange. 101 cannot be: no Upgrade is ever forwarded.
            self._interim = True
            if status == 103:
                exchange.upstream_interim(status, self._headers)
            self._headers = []
            self._chunked = False
            self._length = False
            self._head_size = 0
            return
        exchange.upstream_headers(status, self._headers, self._chunked)
        if self._head:
            # A response to HEAD has no body whatever its Content-Length says; the parser
            # cannot know, so this message ends here and the next starts fresh.
            keep_alive = self._parser.should_keep_alive()
            self._parser = httptools.HttpResponseParser(self)
            self._complete(keep_alive)
        elif not self._chunked and not self._length and status not in (204, 304):
            self._until_close = True

    def on_body(self, body: bytes) -> None:
        if self._exchange is not None:
            self._exchange.upstream_body(body)
        else:
            self._poisoned = True

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._exchange is not None:
            self._complete(self._parser.should_keep_alive())

    # -- used by the proxy --------------------------------------------------------------

    def send(self, exchange: Exchange, data: bytes, head: bool, timeout: float) -> None:
        assert self.transport is not None
        self._exchange = exchange
        self._head = head
        self._got_bytes = False
        self._interim = False
        self._until_close = False
        self._headers = []
        self._chunked = False
        self._length = False
        self._head_size = 0
        self.timeout = timeout
        self.last_activity = self.pool.loop.time()
        self.pool.busy.add(self)
        self.transport.write(data)

    def expire(self) -> None:
        """Called by the pool's sweep when the backend has been silent for too long."""
        self._fail("timeout", f"the backend sent nothing for {self.timeout:g}s", False)

    def pause(self) -> None:
        """Stop reading: the client this response goes to is not keeping up."""
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    def _complete(self, keep_alive: bool) -> None:
        exchange = self._exchange
        self._exchange = None
        self.pool.busy.discard(self)
        # Pooled only after the parser returns (``_settle``): bytes after the end of this
        # response, in the same read, must close the connection, not start another answer.
        self._keep_alive = keep_alive
        self._release = True
        if self.transport is None:
            self._release = False
        if exchange is not None:
            exchange.upstream_done()

    def _settle(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self._keep_alive and not self._poisoned and not transport.is_closing():
            if self.paused:  # a paused connection would never see the backend's close
                self.resume()
            self.pool.release(self)
        else:
            transport.close()

    def _fail(self, kind: str, detail: str, retryable: bool) -> None:
        exchange = self._exchange
        self._exchange = None
        self._release = False
        self.pool.busy.discard(self)
        if self.transport is not None:
            self.transport.abort()
        if exchange is not None:
            exchange.upstream_failed(kind, detail, retryable)


class Pool:
    """Idle connections to one backend (host, port), most recently used first."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        *,
        max_idle: int = 512,
        idle_timeout: float = 4.0,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: collections.deque[UpstreamConnection] = collections.deque()
        self.busy: set[UpstreamConnection] = set()

    def sweep(self, now: float) -> None:
        """Fail exchanges whose backend sent nothing for their timeout (ALB's idle timeout:
        the clock restarts with every byte received)."""
        for conn in [c for c in self.busy if now - c.last_activity >= c.timeout]:
            if conn.paused:  # waiting for a slow client, not for the backend
                conn.last_activity = now
            else:
                conn.expire()

    def take_idle(self) -> UpstreamConnection | None:
        now = self.loop.time()
        idle = self._idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if transport is None or transport.is_closing():
                continue
            if now - conn.idle_since > self.idle_timeout:
                transport.close()
                continue
            conn.reused = True
            return conn
        return None

    async def connect(self, timeout: float) -> UpstreamConnection:
        _, protocol = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
            timeout,
        )
        return protocol

    def release(self, conn: UpstreamConnection) -> None:
        if len(self._idle) >= self.max_idle:
            assert conn.transport is not None
            conn.transport.close()
            return
        conn.idle_since = self.loop.time()
        conn.reused = False
        self._idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()
