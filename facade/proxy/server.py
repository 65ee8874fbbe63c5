"""The facade's request path: parse, normalise, route, choose, forward, answer.

Designed for a small CPU cost per request: one ``asyncio.Protocol`` per client
connection with httptools' parser, a snapshot of the live table read once per request,
a route decision from one regex search, a backend choice from one random number, and
the request written as raw bytes to a pooled keep-alive upstream connection whose
response streams back through callbacks — no task or future per request except when a
new upstream connection must be opened or a Lambda handler runs.

HTTP/1.1 semantics kept: keep-alive and pipelining (requests on one connection are
answered in order, and at most ``limits.pipeline`` are read ahead), hop-by-hop headers
removed both ways (including those named by ``Connection``), ``X-Forwarded-For/Proto/
Port/Host`` and ``X-Amzn-Trace-Id`` set as ALB does, ``Expect: 100-continue`` answered
by the facade, bodies over the limit get 413, and a backend that fails answers 502 (or
504 after the configured timeout) with a JSON body — never a hang.

Every answer is one well-framed response, whatever the client or the backend sends:

- a request the facade refuses (malformed, over a limit of ``facade.limits``, an
  Upgrade or CONNECT, which ALB answers 400) is answered in its turn, after the
  responses before it, and nothing of it is forwarded; the connection then closes
  after the client has had time to read the answer (a lingering close, as nginx does);
- ``100 Continue`` is written only when no earlier response is still being written;
- a backend's ``103 Early Hints`` is relayed, its other interim responses are dropped;
- no body on HEAD, 204 or 304 answers, whoever wrote them; an HTTP/1.0 client gets
  bodies of unknown length unchunked, ended by closing the connection;
- request trailers are read and dropped, never forwarded as headers;
- a client that does not read its answers pauses the backend connection feeding it
  (and the reading of its own requests) until it catches up.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import httptools

from facade.proxy.accesslog import AccessLog
from facade.proxy.choice import Choice
from facade.proxy.lambda_target import MAX_REQUEST_BODY, LambdaInvoker, Throttled
from facade.proxy.live import LiveTable, Snapshot
from facade.proxy.metrics import Metrics
from facade.proxy.normalize import BadPath, normalize_path
from facade.proxy.upstream import Pool, UpstreamConnection
from facade.routing.model import Backend, BackendKind, Route
from facade.shadow.capture import Capture
from facade.shadow.mirror import Mirror

if TYPE_CHECKING:
    from facade.proxy.faults import FaultInjector

log = logging.getLogger("strangler.facade")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
    }
)
# Set by the facade itself on the way to the backend.
REPLACED_UPSTREAM = frozenset(
    {
        b"content-length",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-amzn-trace-id",
        b"expect",
    }
)
# Most header names cannot be hop-by-hop or replaced just by their length: those are
# passed on without lower-casing them first.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})  # names no other header
_SPECIAL_RESPONSE_LENGTHS = frozenset(len(n) for n in HOP_BY_HOP | {b"content-length"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
INTERNAL_PREFIX = "/__facade/"
REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in REASONS.items()}
BODILESS = frozenset({204, 304})
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LINGER = 2.0  # seconds a refused client has to read its answer before the close


_TRACE_PREFIX = os.urandom(8).hex()
_trace_counter = itertools.count(1)


_trace_second = [0, ""]  # the epoch second and the id's text up to the counter


def trace_id() -> str:
    """An X-Amzn-Trace-Id root: epoch seconds, then 96 bits unique to this process."""
    now = int(time.time())
    if now != _trace_second[0]:
        _trace_second[:] = [now, f"Root=1-{now:08x}-{_TRACE_PREFIX}"]
    return f"{_trace_second[1]}{next(_trace_counter) & 0xFFFFFFFF:08x}"


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


_TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}\s*(?:;|$)")


def valid_trace(value: str) -> bool:
    """Whether a client's X-Amzn-Trace-Id carries a well-formed Root (ALB keeps it then)."""
    return len(value) <= 256 and _TRACE_ROOT.search(value) is not None


def error_body(status: int, code: str, message: str, **extra: Any) -> bytes:
    body = {"error": {"status": status, "code": code, "message": message, **extra}}
    return json.dumps(body).encode()


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


@dataclass(slots=True)
class Request:
    method: str
    raw_url: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    too_large: bool
    started: float
    http10: bool = False
    refusal: tuple[int, str, str] | None = None  # answered locally, nothing forwarded


class Refused(Exception):
    """Raised inside a parser callback to stop reading a request the facade refuses."""


class _Dropped:
    """The request headers never forwarded under one table: hop-by-hop, those the facade
    sets itself, and the override header while override is off. ``lengths`` lets most
    names through without lower-casing them first."""

    __slots__ = ("lengths", "names", "snapshot")

    def __init__(self, snapshot: Snapshot | None) -> None:
        names = HOP_BY_HOP | REPLACED_UPSTREAM
        if snapshot is not None:
            override = snapshot.table.settings.override
            if not override.enabled:  # a client's override means nothing to a backend
                names = names | {override.header.lower().encode("latin-1")}
        self.names = names
        self.lengths = frozenset(len(n) for n in names)
        self.snapshot = snapshot


class Facade:
    """Shared state of one proxy process: the live table, pools, metrics, log."""

    def __init__(
        self,
        live: LiveTable,
        loop: asyncio.AbstractEventLoop,
        *,
        metrics: Metrics | None = None,
        access_log: AccessLog | None = None,
        internal: Callable[
            [Facade, str, str, dict[str, list[str]], bytes], Answer | Awaitable[Answer]
        ]
        | None = None,
        listen_port: int = 0,
        faults: FaultInjector | None = None,
    ) -> None:
        from facade.proxy.faults import FaultInjector

        self.live = live
        self.loop = loop
        self.metrics = metrics or Metrics()
        self.faults = faults or FaultInjector(loop, self.metrics)
        self.access_log = access_log
        self.internal = internal
        self.listen_port = listen_port
        self.lambdas = LambdaInvoker(record=self.metrics.invocation)
        self.mirror = Mirror(loop, self.metrics, listen_port=listen_port)  # facade.shadow
        self._pools: dict[str, Pool] = {}
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        # written into every forwarded request as is
        self.forwarded_port = b"x-forwarded-proto: http\r\nx-forwarded-port: %d\r\n" % listen_port
        self._dropped = _Dropped(None)
        self.sweep_every = 0.05
        self._sweeper = loop.call_later(self.sweep_every, self._sweep)
        self.check_every = 1.0
        self._checker = loop.call_later(self.check_every, self._check_clients)
        self.metrics.table_loaded(live.current.table, "ok")
        live.listeners.append(lambda snap, result: self.metrics.table_loaded(snap.table, result))

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a coroutine as a task that is kept referenced until it finishes."""
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def dropped(self, snapshot: Snapshot) -> _Dropped:
        """The request headers not forwarded under ``snapshot``'s table (kept for the
        latest table; requests still on an older one rebuild theirs)."""
        dropped = self._dropped
        if dropped.snapshot is not snapshot:
            dropped = self._dropped = _Dropped(snapshot)
        return dropped

    def pool(self, backend: Backend) -> Pool:
        pool = self._pools.get(backend.url or "")
        if pool is None:
            pool = Pool(self.loop, *backend.address)
            self._pools[backend.url or ""] = pool
        return pool

    def _sweep(self) -> None:
        now = self.loop.time()
        for pool in self._pools.values():
            if pool.busy:
                pool.sweep(now)
        self._sweeper = self.loop.call_later(self.sweep_every, self._sweep)

    def _check_clients(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check(now)
        self._checker = self.loop.call_later(self.check_every, self._check_clients)

    def close(self) -> None:
        self._sweeper.cancel()
        self._checker.cancel()
        for pool in self._pools.values():
            pool.close()
        self.lambdas.close()
        self.mirror.close()
        if self.access_log is not None:
            self.access_log.flush()


class ClientConnection(asyncio.Protocol):
    """One client connection; requests on it are answered one at a time, in order."""

    def __init__(self, facade: Facade, *, admin: bool = False) -> None:
        self.facade = facade
        self.admin = admin  # a connection to the admin listener: /__facade/* only
        self.loop = facade.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self.queue: list[Request] = []
        self.queued_bytes = 0  # bodies of the requests in the queue
        self.busy = False
        self.limits = facade.live.current.table.settings.limits
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._expect_continue = False
        self._keep_alive = True
        self._in_head = True  # between a request's first byte and the end of its head
        self._head_bytes = 0  # bytes received while in a head (bounds httptools' buffer)
        self._header_bytes = 0
        self._upgrade = False
        self._continue_pending = False  # a 100 Continue waits for earlier answers to end
        self._refused = False  # a refusal is queued: read nothing more
        self._eof = False  # the client closed its side
        # the sweep's view (no clock read on the request path)
        self.active = True
        self.idle_since = 0.0
        self.head_since = 0.0
        # the request being answered
        self._req: Request | None = None
        self._snapshot: Snapshot | None = None
        self._route: Route | None = None
        self._choice: Choice | None = None
        self._path = ""
        self._trace = ""
        self._head: list[bytes] | None = None
        self._chunked_out = False
        self._status = 0
        self._sent = 0
        self._upstream: UpstreamConnection | None = None
        self._upstream_bytes = b""
        self._retried = False
        self._write_paused = False
        self._read_paused = False
        # the task answering the current request (a Lambda invocation, an admin edit)
        # the task answering the current request (a Lambda invocation, an admin edit)
        self._task: asyncio.Task[None] | None = None
        # the current answer's copy for its route's shadow comparison (facade.shadow)
        self._shadow: Capture | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        connections = self.facade.connections
        if len(connections) >= self.limits.connections:
            self._refuse(503, "too_many_connections", "the facade is at its connection limit")
            return
        connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # a refused request's rest, or what follows it: read and dropped
        self.active = True
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # on_message_complete queued the refusal already; what follows is not HTTP
            return
        except httptools.HttpParserCallbackError as exc:
            if self._refused:  # a callback raised Refused: the refusal is queued
                return
            log.error("request parsing failed", exc_info=exc)
            self._refuse(500, "internal_error", "the facade failed to read this request")
            return
        except httptools.HttpParserError as exc:
            self._refuse(400, "bad_request", f"malformed HTTP request: {exc}")
            return
        limits = self.limits
        if self._in_head and self._head_bytes > limits.headers + limits.request_line:
            self._refuse(
                431, "headers_too_large", f"request heads are limited to {limits.headers} bytes"
            )

    def eof_received(self) -> bool | None:
        if self.busy or self.queue:
            self._eof = True
            return True  # half-closed: the answers still go out, then the connection closes
        return None

    def check(self, now: float) -> None:
        """About once a second (``Facade``'s sweep): the header-read timeout, the idle
        timeout, and a client that stopped reading its answers."""
        transport = self.transport
        if transport is None:
            return
        if self.active:
            self.active = False
            self.idle_since = now
        limits = self.limits
        if self.busy or self.queue:
            if self._write_paused and now - self.idle_since > limits.idle_timeout:
                transport.abort()  # not read for the idle timeout: ALB drops it too
        elif self._in_head and self._head_bytes:
            if not self.head_since:
                self.head_since = now
            elif now - self.head_since > limits.header_timeout:
                self._refuse(
                    408, "request_timeout", f"a request's head must arrive within "
                    f"{limits.header_timeout:g}s",
                )  # fmt: skip
        elif now - self.idle_since > limits.idle_timeout:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.facade.connections.discard(self)
        upstream = self._upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.abort()  # the answer has nowhere to go; never reuse
        self._upstream = None
        self.queue.clear()
        self._no_shadow_pair()  # the client left before its answer was whole
        if self._task is not None:  # a queued invocation never runs now
            self._task.cancel()
            self._task = None

    def pause_writing(self) -> None:
        self._write_paused = True
        upstream = self._upstream
        if upstream is not None:
            upstream.pause()
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self.active = True
        upstream = self._upstream
        if upstream is not None:
            upstream.resume()
        self._update_reading()

    def _update_reading(self) -> None:
        """Read requests only while the client reads its answers and the queue has room."""
        transport = self.transport
        if transport is None:
            return
        pause = (
            self._write_paused
            or self._refused
            or len(self.queue) >= self.limits.pipeline
            or self.queued_bytes > self.facade.live.current.table.settings.max_body_bytes
        )
        if pause != self._read_paused:
            self._read_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` in this request's turn, read nothing more, then close."""
        if self._refused:
            return
        self._refused = True
        self._continue_pending = False
        self.facade.metrics.refusal(code)
        self._update_reading()
        request = Request(
            method="", raw_url=b"", headers=[], body=b"", keep_alive=False, too_large=False,
            started=time.perf_counter(), refusal=(status, code, message),
        )  # fmt: skip
        if self.busy:
            self.queue.append(request)
        else:
            self._start(request)

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close after the answer is out, without resetting a client still sending: stop
        writing, drop what it sends, and close when it does (or after ``LINGER``)."""
        self.transport = None
        if transport.can_write_eof():
            transport.write_eof()
            self._refused = True
            transport.resume_reading()
            self.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._size = 0
        self._too_large = False
        self._in_head = True
        self._header_bytes = 0
        self._upgrade = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.request_line:
            self._refuse(
                414,
                "uri_too_long",
                f"request targets are limited to {self.limits.request_line} bytes",
            )
            raise Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self.limits
        size = len(name) + len(value) + 4
        self._header_bytes += size
        if size > limits.header or self._header_bytes > limits.headers:
            self._refuse(
                431,
                "headers_too_large",
                f"a header is limited to {limits.header} bytes and all headers to {limits.headers}",
            )
            raise Refused
        if not self._in_head:
            return  # a trailer of a chunked body: read, never forwarded (RFC 9110 6.5.1)
        headers = self._headers
        headers.append((name, value))
        if len(headers) > limits.header_count:
            self._refuse(
                431, "too_many_headers", f"requests are limited to {limits.header_count} headers"
            )
            raise Refused
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            limit = self.facade.live.current.table.settings.max_body_bytes
            if value.isdigit() and int(value) > limit:
                self._too_large = True
        elif size == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self.head_since = 0.0
        parser = self.parser
        self._keep_alive = parser.should_keep_alive()
        self._upgrade = parser.should_upgrade()
        if self._expect_continue:
            self._expect_continue = False
            if not self._too_large and not self._upgrade and parser.get_http_version() != "1.0":
                if self.busy or self.queue:
                    self._continue_pending = True  # written when the answers before it end
                elif self.transport is not None:
                    self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._size += len(body)
        if self._size > self.facade.live.current.table.settings.max_body_bytes:
            self._too_large = True
            self._body = []
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._continue_pending = False
        if self._upgrade:
            # ALB answers an Upgrade (for a target it does not proxy WebSockets to) and
            # CONNECT with 400; nothing reaches a backend.
            self._refuse(
                400, "upgrade_not_supported", "protocol upgrades and CONNECT are not supported"
            )
            return
        parser = self.parser
        body = self._body
        request = Request(
            parser.get_method().decode("ascii", "replace"),  # method
            self._url,  # raw_url
            self._headers,  # headers
            (body[0] if len(body) == 1 else b"".join(body)) if body else b"",  # body
            self._keep_alive,  # keep_alive
            self._too_large,  # too_large
            time.perf_counter(),  # started
            parser.get_http_version() == "1.0",  # http10
        )
        if self.busy:
            # a client pipelining without reading answers: at most ``limits.pipeline``
            # requests or one body's limit in bytes are read ahead (plus one read's worth)
            self.queue.append(request)
            self.queued_bytes += len(request.body)
            self._update_reading()
        else:
            self._start(request)

    # -- answering ----------------------------------------------------------------------

    def _start(self, req: Request) -> None:
        self.busy = True
        self._req = req
        self._route = None
        self._choice = None
        self._head = None
        self._status = 0
        self._sent = 0
        self._retried = False
        self._trace = ""
        if req.refusal is not None:
            self._path = ""
            self._local_error(*req.refusal)
            return
        raw_url = req.raw_url
        try:
            if raw_url.startswith(b"/"):  # origin-form, by far the common case
                raw_path, _, query_part = raw_url.partition(b"#")[0].partition(b"?")
                query: bytes | None = query_part or None
            else:  # absolute-form (a client treating us as a forward proxy)
                url = httptools.parse_url(raw_url)
                raw_path, query = url.path or b"/", url.query
            self._path = normalize_path(raw_path.decode("latin-1"))
        except (httptools.HttpParserInvalidURLError, BadPath) as exc:
            self._path = raw_url.decode("latin-1")
            self._local_error(400, "bad_path", f"cannot route this path: {exc}")
            return
        if req.too_large:
            limit = self.facade.live.current.table.settings.max_body_bytes
            req.keep_alive = False  # the unread body makes the connection unusable
            self._local_error(413, "body_too_large", f"request bodies are limited to {limit} bytes")
            return

        headers: dict[str, list[str]] = {}
        for name, value in req.headers:
            key = name.decode("latin-1").lower()
            values = headers.get(key)
            if values is None:
                headers[key] = [value.decode("latin-1")]
            else:
                values.append(value.decode("latin-1"))

        if self.admin:
            self._answer_admin(req, headers)
            return
        if self._path.startswith(INTERNAL_PREFIX):
            # the facade's own endpoints exist only on the admin listener
            self._local_error(404, "not_found", f"no such path {self._path}")
            return

        snapshot = self.facade.live.current
        self._snapshot = snapshot
        route = snapshot.matcher.match(req.method, self._path, headers)
        if route.fixed is not None:  # a deny rule: answered here, as ALB's fixed-response
            fixed = route.fixed
            self._send_local(
                fixed.status,
                [
                    (b"content-type", fixed.content_type.encode("latin-1")),
                    (snapshot.table.settings.route_header.encode("latin-1"), route.name.encode()),
                ],
                fixed.body.encode("utf-8"),
            )
            return
        choice = snapshot.chooser.choose(route, headers)
        self._route = route
        self._choice = choice
        backend = snapshot.table.backends[choice.backend]
        trace = headers.get("x-amzn-trace-id")
        self._trace = trace[0] if trace and valid_trace(trace[0]) else trace_id()
        if route.shadow is not None:
            self._shadow = self._mirror(snapshot, route, choice, req, headers, query)
        if backend.faults is not None:  # injected after the choice, as Envoy's fault filter
            self.facade.faults.inject(self, route.name, backend, req, headers, query)
            return
        self.dispatch(backend, req, headers, query)

    def dispatch(
        self, backend: Backend, req: Request, headers: dict[str, list[str]], query: bytes | None
    ) -> None:
        """Send the current request on to its chosen backend."""
        if backend.kind is BackendKind.LAMBDA and backend.handler:
            if len(req.body) > MAX_REQUEST_BODY:
                req.keep_alive = False
                self._backend_error(
                    413,
                    "body_too_large",
                    f"Lambda targets take bodies up to {MAX_REQUEST_BODY} bytes",
                )
                return
            self._task = self.facade.spawn(self._invoke_lambda(backend, req, headers, query))
            return
        self._upstream_bytes = self._encode_upstream(req, headers, query)
        self._forward(backend)

    def _mirror(
        self,
        snapshot: Snapshot,
        route: Route,
        choice: Choice,
        req: Request,
        headers: dict[str, list[str]],
        query: bytes | None,
    ) -> Capture | None:
        """The shadow hook: copies of this request leave now (``facade.shadow.mirror``)."""
        return self.facade.mirror.copy(
            snapshot.table, route, choice.backend, req.method, self._path, query, req.headers,
            headers, req.body, self.client_ip, self._trace,
        )  # fmt: skip

    def _answer_admin(self, req: Request, headers: dict[str, list[str]]) -> None:
        internal = self.facade.internal
        if internal is None or not self._path.startswith(INTERNAL_PREFIX):
            self._local_error(404, "not_found", f"no facade endpoint {self._path}")
            return
        answer = internal(self.facade, req.method, self._path, headers, req.body)
        if isinstance(answer, tuple):
            self._send_local(*answer)
            return

        async def later(pending: Awaitable[Answer]) -> None:
            # an edit: file lock, YAML and fsync run on a thread, never on this loop
            status, extra, body = await pending
            self._task = None
            if self.transport is not None:
                self._send_local(status, extra, body)

        self._task = self.facade.spawn(later(answer))

    def _encode_upstream(
        self, req: Request, headers: dict[str, list[str]], query: bytes | None
    ) -> bytes:
        parts = [req.method.encode("ascii"), b" ", self._path.encode("latin-1")]
        if query:
            parts += (b"?", query)
        parts.append(b" HTTP/1.1\r\n")
        assert self._snapshot is not None
        dropped = self.facade.dropped(self._snapshot)
        names, lengths = dropped.names, dropped.lengths
        connection = headers.get("connection")
        if connection:  # the headers it names are hop-by-hop too (rare: widen the filter)
            names = names | {t.strip().lower().encode() for v in connection for t in v.split(",")}
            lengths = frozenset(len(n) for n in names)
        for name, value in req.headers:
            if len(name) in lengths and name.lower() in names:
                continue
            parts += (name, b": ", value, b"\r\n")
        forwarded = headers.get("x-forwarded-for")
        client = self.client_ip
        xff = f"{', '.join(forwarded)}, {client}" if forwarded else client
        parts += (b"x-forwarded-for: ", xff.encode("latin-1"), b"\r\n", self.facade.forwarded_port)
        if "host" in headers:  # from Host, never a client's own X-Forwarded-Host
            parts += (b"x-forwarded-host: ", headers["host"][0].encode("latin-1"), b"\r\n")
        parts += (b"x-amzn-trace-id: ", self._trace.encode("latin-1"), b"\r\n")
        if req.body or req.method in ("POST", "PUT", "PATCH"):
            parts += (b"content-length: ", str(len(req.body)).encode(), b"\r\n")
        parts += (b"\r\n", req.body)
        return b"".join(parts)

    def _forward(self, backend: Backend, *, fresh: bool = False) -> None:
        """Send the encoded request on an idle pooled connection, or a new one."""
        pool = self.facade.pool(backend)
        conn = None if fresh else pool.take_idle()
        timeouts = self._snapshot.table.settings.timeouts if self._snapshot else None
        assert timeouts is not None
        assert self._req is not None
        if conn is not None:
            self._upstream = conn
            conn.send(self, self._upstream_bytes, self._req.method == "HEAD", timeouts.read)
            if self._write_paused:
                conn.pause()
        else:
            self.facade.spawn(self._connect_and_send(pool, timeouts.connect, timeouts.read))

    async def _connect_and_send(self, pool: Pool, connect: float, read: float) -> None:
        try:
            conn = await pool.connect(connect)
        except TimeoutError:
            self._backend_error(
                504, "connect_timeout", f"no connection to the backend within {connect:g}s"
            )
            return
        except OSError as exc:
            self._backend_error(
                502, "connect_failed", f"cannot connect to the backend: {exc.strerror or exc}"
            )
            return
        if self.transport is None or self._req is None:  # the client left meanwhile
            pool.release(conn)
            return
        self._upstream = conn
        conn.send(self, self._upstream_bytes, self._req.method == "HEAD", read)
        if self._write_paused:
            conn.pause()

    # -- Exchange callbacks from the upstream connection ---------------------------------

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Relay a backend's 103 Early Hints (never to an HTTP/1.0 client, RFC 9110 15.2)."""
        req, transport = self._req, self.transport
        if req is None or req.http10 or transport is None:
            return
        head = [status_line(status)]
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        transport.write(b"".join(head))

    def upstream_headers(
        self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool
    ) -> None:
        self._status = status
        if self._shadow is not None:
            self._shadow.head(status, headers)
        head = [status_line(status)]
        has_length = False
        connection: bytes | None = None
        special = _SPECIAL_RESPONSE_LENGTHS
        for name, value in headers:
            if len(name) in special:
                lname = name.lower()
                if lname in HOP_BY_HOP:
                    if lname == b"connection":
                        connection = value
                    continue
                if lname == b"content-length":
                    has_length = True
            head += (name, b": ", value, b"\r\n")
        if connection is not None and connection.lower() not in _PLAIN_CONNECTION:
            # headers the backend named in Connection are hop-by-hop too (rare: filter again)
            named = {t.strip().lower() for t in connection.split(b",")} - {b"keep-alive", b"close"}
            if named:
                head = head[:1] + [
                    piece
                    for name, value in headers
                    if name.lower() not in named and name.lower() not in HOP_BY_HOP
                    for piece in (name, b": ", value, b"\r\n")
                ]
        req = self._req
        assert req is not None
        bodiless = status in BODILESS or req.method == "HEAD"
        self._chunked_out = not bodiless and (chunked or not has_length)
        if self._chunked_out:
            if req.http10:  # cannot read chunks: the body is sent as is, ended by the close
                self._chunked_out = False
                req.keep_alive = False
            else:
                head.append(b"transfer-encoding: chunked\r\n")
        self._head = self._decorate(head)

    def _decorate(self, head: list[bytes]) -> list[bytes]:
        choice = self._choice
        if choice is not None:
            head.append(choice.head)
        req = self._req
        if req is not None:
            if not req.keep_alive:
                head.append(b"connection: close\r\n")
            elif req.http10:
                head.append(b"connection: keep-alive\r\n")
        head.append(b"\r\n")
        return head

    def upstream_body(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or not data:
            return
        self._sent += len(data)
        if self._shadow is not None:
            self._shadow.body(data)
        piece = b"%x\r\n%s\r\n" % (len(data), data) if self._chunked_out else data
        head = self._head
        if head is not None:
            head.append(piece)
            transport.write(b"".join(head))
            self._head = None
        else:
            transport.write(piece)

    def upstream_done(self) -> None:
        self._upstream = None
        transport = self.transport
        if transport is not None:
            tail = b"0\r\n\r\n" if self._chunked_out else b""
            head = self._head
            if head is not None:
                head.append(tail)
                transport.write(b"".join(head))
                self._head = None
            elif tail:
                transport.write(tail)
        self._finish()

    def upstream_failed(self, kind: str, detail: str, retryable: bool) -> None:
        self._upstream = None
        req = self._req
        route, choice = self._route, self._choice
        if (
            retryable
            and not self._retried
            and req is not None
            and req.method in IDEMPOTENT
            and self._snapshot is not None
            and choice is not None
        ):
            # A pooled connection the backend had just closed: the request never arrived.
            self._retried = True
            self._forward(self._snapshot.table.backends[choice.backend], fresh=True)
            return
        if self._status:  # the status line is out: all we can do is cut the response
            self._no_shadow_pair()  # no whole answer of the backend's to compare
            if route is not None and choice is not None:
                self.facade.metrics.upstream_error(route.name, choice.backend, kind)
            if self.transport is not None:
                self.transport.abort()
            return
        status = 504 if kind == "timeout" else 502
        self._backend_error(status, kind, detail)

    # -- local answers ------------------------------------------------------------------

    def _backend_error(self, status: int, code: str, message: str) -> None:
        route, choice = self._route, self._choice
        self._no_shadow_pair()  # no answer of the backend's to compare
        if route is not None and choice is not None:
            self.facade.metrics.upstream_error(route.name, choice.backend, code)
            self._send_local(
                status,
                [(b"content-type", b"application/json")],
                error_body(status, code, message, route=route.name, backend=choice.backend),
            )
        else:
            self._local_error(status, code, message)

    def _no_shadow_pair(self) -> None:
        """The current request's shadow copy has no primary answer to be compared with
        (counted ``dropped:primary_failed``)."""
        if self._shadow is not None:
            self._shadow.failed()
            self._shadow = None

    def answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Answer the current request from the facade in its backend's name (a fault)."""
        self._send_local(status, headers, body)

    def _local_error(self, status: int, code: str, message: str) -> None:
        self._send_local(
            status, [(b"content-type", b"application/json")], error_body(status, code, message)
        )

    def _send_local(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._status = status
        if self._shadow is not None:
            self._shadow.whole(status, headers, body)
        head = [status_line(status)]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        req = self._req
        if status in BODILESS:
            body = b""  # 204 and 304 have neither a body nor (204) a length
        else:
            head += (b"content-length: ", str(len(body)).encode(), b"\r\n")
            if req is not None and req.method == "HEAD":
                body = b""  # the length it would have, not the body
        head = self._decorate(head)
        self._sent = len(body)
        if self.transport is not None:
            self.transport.write(b"".join(head) + body)
        self._finish()

    def _finish(self) -> None:
        req = self._req
        assert req is not None
        route, choice = self._route, self._choice
        if route is not None and choice is not None:
            elapsed = time.perf_counter() - req.started
            self.facade.metrics.observe(
                route.name, choice.backend, choice.decision, self._status, elapsed
            )
            access_log = self.facade.access_log
            if access_log is not None:
                access_log.request(
                    self.client_ip,
                    req.method,
                    self._path,
                    self._status,
                    route.name,
                    choice.backend,
                    choice.decision,
                    elapsed,
                    self._sent,
                    self._trace,
                )
        if self._shadow is not None:
            self._shadow.finished()
            self._shadow = None
        self._req = None
        self._snapshot = None
        self._upstream = None
        self.busy = False
        self.active = True
        transport = self.transport
        if transport is None:
            return
        if not req.keep_alive:
            self._linger(transport)
            return
        if self._eof and not self.queue:
            transport.close()
            self.transport = None
            return
        if self.queue:
            following = self.queue.pop(0)
            self.queued_bytes -= len(following.body)
            self._start(following)
            self._update_reading()
        elif self._continue_pending:
            self._continue_pending = False
            transport.write(CONTINUE)

    # -- Lambda backends ----------------------------------------------------------------

    async def _invoke_lambda(
        self, backend: Backend, req: Request, headers: dict[str, list[str]], query: bytes | None
    ) -> None:
        assert self._snapshot is not None
        assert self._route is not None
        settings = self._snapshot.table.settings
        timeout = settings.timeouts.lambda_
        sent = req.headers
        if not settings.override.enabled:  # as for HTTP backends: never seen by the handler
            override = settings.override.header.encode("latin-1")
            sent = [(n, v) for n, v in sent if n.lower() != override]
        try:
            status, out_headers, body = await self.facade.lambdas.invoke(
                backend,
                req.method,
                self._path,
                query,
                sent,
                req.body,
                timeout,
                self.client_ip,
                self._trace,
                self.facade.listen_port,
            )
        except TimeoutError:
            self._task = None
            self._backend_error(
                504, "lambda_timeout", f"the Lambda handler ran longer than {timeout:g}s"
            )
            return
        except Throttled as exc:
            self._task = None
            self._backend_error(503, "lambda_throttled", f"the Lambda function is throttled: {exc}")
            return
        except Exception as exc:
            self._task = None
            log.warning("Lambda handler %s failed: %r", backend.handler, exc)
            self._backend_error(
                502, "lambda_error", f"the Lambda handler failed: {type(exc).__name__}"
            )
            return
        self._task = None
        if self.transport is None:
            return
        self._send_local(status, out_headers, body)
