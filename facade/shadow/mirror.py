"""The mirror: copies of a route's requests to its shadow backend, sent by the facade.

For a request on a route with a ``shadow`` block, once the request has been read:

1. **whether to copy** — the method is one of ``shadow.methods`` (writes only with
   ``writes: true``); the backend that serves the request is not the shadow itself; the
   request falls in ``shadow.percent`` — by its stable key where the route has one (the
   same hash as the choice of backend, so a user's whole session is copied or none of
   it), else by a random draw;
2. **the caps** — at most ``shadow.max_concurrent`` copies in flight per route (and
   worker), request bodies of at most ``shadow.max_body_bytes``: past a cap the copy is
   dropped and counted, never queued;
3. **the copies** — the request as the primary gets it (same method, path, query,
   headers and Host; no rewriting) plus ``X-Strangler-Shadow: read`` (or ``write``), to
   the shadow backend; and for ``shadow.noise`` of the safe requests a second copy to
   the backend that served the primary, whose answer teaches the comparison what
   differs by nature. HTTP copies go over the mirror's own connection pools, Lambda
   copies to the mirror's own execution environments (never the primary's); each must
   answer within ``shadow.timeout`` or is an error;
4. **the pair** — the primary's answer is captured as it streams to the client, bounded
   by ``shadow.max_body_bytes`` (``facade.shadow.capture``); when it and the copies'
   answers are all in, the pair goes to the recorder process (``facade.shadow.recorder``)
   to be compared, redacted and stored.

Nothing on this path can change, delay or fail the primary: the copies are tasks of
their own, started after the primary was sent on its way, and every failure of theirs
ends in a counter.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facade.proxy.choice import parse_cookies
from facade.proxy.lambda_target import MAX_REQUEST_BODY, LambdaInvoker, Throttled
from facade.proxy.upstream import Pool, UpstreamConnection
from facade.routing.model import (
    SAFE_METHODS,
    SHARE_TOTAL,
    Backend,
    BackendKind,
    Route,
    RoutingTable,
)
from facade.shadow.capture import Capture
from facade.shadow.compare import Answer
from facade.shadow.recorder import Count, Pair, Recorder
from facade.shadow.store import store_file

if TYPE_CHECKING:
    from facade.proxy.metrics import Metrics

log = logging.getLogger("strangler.shadow")

SHADOW_HEADER = b"x-strangler-shadow"
SHADOW, NOISE = "shadow", "noise"
_NO_ANSWER = Answer(0, (), b"")  # a pending pair's placeholder
IDLE_CONNECTIONS = 4096  # per shadow backend and worker
SWEEP = 0.05  # seconds between checks of the copies' deadlines


class _TooLarge(Exception):
    """A copy's answer is over ``shadow.max_body_bytes``."""


class _Copy:
    """One copy over HTTP: an ``upstream.Exchange`` collecting the answer through
    callbacks, as the proxy's own requests do (no task unless a connection is opened)."""

    __slots__ = (
        "backend", "conn", "deadline", "encoded", "finished", "head", "headers", "kind",
        "limit", "mirror", "pending", "pieces", "retried", "safe", "size", "status",
    )  # fmt: skip

    def __init__(
        self, mirror: Mirror, pending: _Pending, kind: str, backend: Backend, encoded: bytes,
        method: str, deadline: float,
    ) -> None:  # fmt: skip
        self.mirror = mirror
        self.pending = pending
        self.kind = kind
        self.backend = backend
        self.encoded = encoded
        self.head = method == "HEAD"
        self.safe = method in SAFE_METHODS
        self.deadline = deadline
        self.limit = pending.request.rules.max_body_bytes
        self.conn: UpstreamConnection | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.pieces: list[bytes] = []
        self.size = 0
        self.retried = False
        self.finished = False

    def send(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.send(self, self.encoded, self.head, 3600.0)  # the mirror's sweep times it

    def upstream_headers(self, status: int, headers: list[tuple[bytes, bytes]], _: bool) -> None:
        self.status, self.headers = status, headers

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        pass

    def upstream_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size <= self.limit:
            self.pieces.append(data)

    def upstream_done(self) -> None:
        self.conn = None
        if self.size > self.limit:
            self.mirror._copied(self, None, "dropped:body")
            return
        headers = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in self.headers)
        self.mirror._copied(self, Answer(self.status, headers, b"".join(self.pieces)), "")

    def upstream_failed(self, kind: str, detail: str, retryable: bool) -> None:
        self.conn = None
        if self.finished:
            return
        if retryable and self.safe and not self.retried:
            # a pooled connection the backend had just closed: the copy never arrived
            self.retried = True
            self.mirror._connect(self)
            return
        self.mirror._copied(self, None, f"error:{self.kind}_{kind}")

    def release(self) -> None:
        """A finished copy stays in the deadline heap until its deadline (``timeout``
        after it was sent): it keeps nothing but that. Thousands of finished copies with
        their requests and answers alive made every full collection of the garbage
        collector walk them — pauses of 100 ms and more in the worker."""
        self.pending = _RELEASED
        self.encoded = b""
        self.headers = []
        self.pieces = []

    def expire(self) -> None:
        conn, self.conn = self.conn, None
        self.mirror._copied(self, None, f"error:{self.kind}_timeout")
        if conn is not None and conn.transport is not None:
            conn.transport.abort()  # late: never reused


class _Pending:
    """The answers of one copied request, as they come in."""

    __slots__ = ("copies", "dropped", "expected", "mirror", "primary", "request", "settled")

    def __init__(self, mirror: Mirror, request: Pair, expected: int) -> None:
        self.mirror = mirror
        self.request = request  # primary/shadow/noise left empty until they are known
        self.expected = expected
        self.copies: dict[str, Answer | None] = {}
        self.primary: Answer | None = None
        self.settled = False  # the primary's answer is known (or known to be missing)
        self.dropped = False  # counted as dropped already (once per request)

    def drop(self, why: str) -> None:
        if not self.dropped:
            self.dropped = True
            self.mirror.count(self.request, f"dropped:{why}")

    def primary_done(self, answer: Answer | None, why: str) -> None:
        self.settled = True
        self.primary = answer
        if answer is None:
            self.drop(why)
        self._maybe_record()

    def copy_done(self, kind: str, answer: Answer | None) -> None:
        self.copies[kind] = answer
        self._maybe_record()

    def _maybe_record(self) -> None:
        if not self.settled or len(self.copies) < self.expected or self.primary is None:
            return
        shadow, noise = self.copies.get(SHADOW), self.copies.get(NOISE)
        if shadow is None and noise is None:
            return
        request = self.request
        self.mirror.recorder.submit(
            Pair(
                request.route, request.store, request.rules, request.method, request.path,
                request.query, request.headers, self.primary, shadow, noise,
            )
        )  # fmt: skip


class Mirror:
    """The copies of one facade worker: its pools, environments, caps and recorder."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
    ) -> None:
        from facade.proxy.server import HOP_BY_HOP, REPLACED_UPSTREAM  # defined once, there

        self.loop = loop
        self.metrics = metrics
        self._not_copied = HOP_BY_HOP | REPLACED_UPSTREAM | {SHADOW_HEADER}
        self._random = (rng or random.Random()).random  # noqa: S311 - sampling, not a secret
        self._pools: dict[str, Pool] = {}
        self._lambdas: LambdaInvoker | None = None
        self.in_flight: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # connecting, and Lambda copies
        # HTTP copies by deadline (finished ones leave when their deadline comes up)
        self._deadlines: list[tuple[float, int, _Copy]] = []
        self._sequence = itertools.count()
        self._sweeper: asyncio.TimerHandle | None = None
        self._recorder: Recorder | None = None
        self._stores: dict[tuple[str, str], Path] = {}

    @property
    def recorder(self) -> Recorder:
        """The recorder process, started with the first copy (most tables shadow nothing)."""
        if self._recorder is None:
            self._recorder = Recorder(self.loop, self.metrics.shadow)
        return self._recorder

    # -- called by the proxy ------------------------------------------------------------

    def copy(
        self,
        table: RoutingTable,
        route: Route,
        served_by: str,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        header_map: Mapping[str, Sequence[str]],
        body: bytes,
        client_ip: str,
        trace: str,
    ) -> Capture | None:
        """Start the copies of a request the primary is serving; the capture of the
        primary's answer, or None when nothing is copied. Never raises: whatever goes
        wrong with a copy is the copy's problem, logged, and the primary goes on."""
        try:
            return self._copy(
                table, route, served_by, method, path, query, headers, header_map, body,
                client_ip, trace,
            )  # fmt: skip
        except Exception:
            log.exception("shadow copy of %s %s failed to start", method, path)
            return None

    def _copy(
        self,
        table: RoutingTable,
        route: Route,
        served_by: str,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        header_map: Mapping[str, Sequence[str]],
        body: bytes,
        client_ip: str,
        trace: str,
    ) -> Capture | None:
        rules = route.shadow
        if rules is None or method not in rules.methods or served_by == rules.backend:
            return None
        if not self._sampled(route, rules.share, header_map):
            return None
        store = self._stores.get((table.source, rules.store))
        if store is None:
            store = self._stores[table.source, rules.store] = store_file(table, route.name)
        noise = method in SAFE_METHODS and self._random() * SHARE_TOTAL < rules.noise
        request = Pair(
            route.name, store, rules, method, path, (query or b"").decode("latin-1"),
            tuple(headers), _NO_ANSWER, None, None,
        )  # fmt: skip
        if len(body) > rules.max_body_bytes:
            self.count(request, "dropped:body")
            return None
        running = self.in_flight.get(route.name, 0)
        if running >= rules.max_concurrent:
            self.count(request, "dropped:concurrency")
            return None
        noise = noise and running + 1 < rules.max_concurrent
        pending = _Pending(self, request, 2 if noise else 1)
        encoded = self._encode(method, path, query, headers, body, client_ip, trace, table)
        copy = _Request(method, path, query, headers, body, client_ip, trace, encoded)
        targets = [(SHADOW, table.backends[rules.backend])]
        if noise:
            targets.append((NOISE, table.backends[served_by]))
        for kind, backend in targets:
            self.in_flight[route.name] = self.in_flight.get(route.name, 0) + 1
            self._send(pending, kind, backend, copy)
        return Capture(rules.max_body_bytes, pending.primary_done)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self.tasks:
            task.cancel()
        for pool in self._pools.values():
            pool.close()
        if self._lambdas is not None:
            self._lambdas.close()
        if self._recorder is not None:
            self._recorder.close()

    # -- the copies ---------------------------------------------------------------------

    def count(self, request: Pair, name: str) -> None:
        self.metrics.shadow(request.route, name.partition(":")[0])
        self.recorder.submit(Count(request.route, request.store, name))

    def _sampled(self, route: Route, share: int, headers: Mapping[str, Sequence[str]]) -> bool:
        if share >= SHARE_TOTAL:
            return True
        key = route.stable_key
        value: str | None = None
        if key is not None:
            if key.header is not None:
                values = headers.get(key.header)
                value = values[0] if values else None
            else:
                value = parse_cookies(headers.get("cookie", ())).get(key.cookie or "")
        if value:  # the choice's hash, salted apart so the copied share is not one backend's
            bucket = zlib.crc32(f"{route.name}\x00shadow\x00{value}".encode()) % SHARE_TOTAL
        else:
            bucket = int(self._random() * SHARE_TOTAL)
        return bucket < share

    def _encode(
        self,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client_ip: str,
        trace: str,
        table: RoutingTable,
    ) -> bytes:
        target = path.encode("latin-1") + (b"?" + query if query else b"")
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        skip = self._not_copied | {table.settings.override.header.encode("latin-1")}
        forwarded: list[bytes] = []
        for name, value in headers:
            lname = name.lower()
            if lname == b"x-forwarded-for":
                forwarded.append(value)
            if lname not in skip:
                parts += (name, b": ", value, b"\r\n")
        xff = b", ".join([*forwarded, client_ip.encode("latin-1")])
        mark = b"read" if method in SAFE_METHODS else b"write"
        parts += (
            b"x-forwarded-for: ", xff, b"\r\nx-forwarded-proto: http\r\nx-amzn-trace-id: ",
            trace.encode("latin-1"), b"\r\n", SHADOW_HEADER, b": ", mark, b"\r\n",
        )  # fmt: skip
        if body or method in ("POST", "PUT", "PATCH"):
            parts += (b"content-length: ", str(len(body)).encode(), b"\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)

    def _send(self, pending: _Pending, kind: str, backend: Backend, request: _Request) -> None:
        rules = pending.request.rules
        if backend.kind is BackendKind.LAMBDA and backend.handler:
            task = self.loop.create_task(self._lambda_copy(pending, kind, backend, request))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        copy = _Copy(
            self, pending, kind, backend, request.encoded, request.method,
            self.loop.time() + rules.timeout,
        )  # fmt: skip
        heapq.heappush(self._deadlines, (copy.deadline, next(self._sequence), copy))
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(SWEEP, self._sweep)
        conn = self._pool(backend).take_idle()
        if conn is not None:
            copy.send(conn)
        else:
            self._connect(copy)

    def _pool(self, backend: Backend) -> Pool:
        pool = self._pools.get(backend.url or "")
        if pool is None:
            # copies to a slow shadow are many at once: keep as many connections for reuse
            pool = Pool(self.loop, *backend.address, max_idle=IDLE_CONNECTIONS)
            self._pools[backend.url or ""] = pool
        return pool

    def _connect(self, copy: _Copy) -> None:
        async def connect() -> None:
            pool = self._pool(copy.backend)
            try:
                conn = await pool.connect(max(0.01, copy.deadline - self.loop.time()))
            except (OSError, TimeoutError) as exc:
                log.debug("shadow copy to %s: no connection: %r", copy.backend.name, exc)
                self._copied(copy, None, f"error:{copy.kind}_connect")
                return
            if copy.finished:  # timed out meanwhile: the connection serves the next copy
                pool.release(conn)
                return
            copy.send(conn)

        task = self.loop.create_task(connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _sweep(self) -> None:
        """Copies past ``shadow.timeout`` end as errors (one timer for all of them)."""
        now = self.loop.time()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            copy = heapq.heappop(deadlines)[2]
            if not copy.finished:
                copy.expire()
        self._sweeper = self.loop.call_later(SWEEP, self._sweep) if deadlines else None

    def _copied(self, copy: _Copy, answer: Answer | None, problem: str) -> None:
        if copy.finished:
            return
        copy.finished = True
        pending = copy.pending
        copy.release()
        self._settle(pending, copy.kind, answer, problem)

    def _settle(self, pending: _Pending, kind: str, answer: Answer | None, problem: str) -> None:
        request = pending.request
        self.in_flight[request.route] -= 1
        if problem.startswith("dropped:"):
            pending.drop(problem.partition(":")[2])
        elif problem:
            self.count(request, problem)
        pending.copy_done(kind, answer)

    async def _lambda_copy(
        self, pending: _Pending, kind: str, backend: Backend, request: _Request
    ) -> None:
        rules = pending.request.rules
        answer: Answer | None = None
        problem = ""
        try:
            async with asyncio.timeout(rules.timeout):
                answer = await self._invoke(backend, request, rules.timeout)
        except TimeoutError:
            problem = f"error:{kind}_timeout"
        except _TooLarge:
            problem = "dropped:body"
        except Throttled:
            problem = "dropped:concurrency"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the handler failed, or answered what ALB refuses
            problem = f"error:{kind}_failed"
            log.debug("shadow copy to %s failed: %r", backend.name, exc)
        self._settle(pending, kind, answer, problem)

    async def _invoke(self, backend: Backend, request: _Request, timeout: float) -> Answer:
        if len(request.body) > MAX_REQUEST_BODY:
            raise _TooLarge()
        if self._lambdas is None:
            # environments of the mirror's own: a slow shadow never holds the primary's
            self._lambdas = LambdaInvoker(queue=0)
        mark = b"read" if request.method in SAFE_METHODS else b"write"
        sent = [(n, v) for n, v in request.headers if n.lower() != SHADOW_HEADER]
        sent.append((SHADOW_HEADER, mark))
        status, out, data = await self._lambdas.invoke(
            backend, request.method, request.path, request.query, sent, request.body, timeout,
            request.client_ip, request.trace, 0,
        )  # fmt: skip
        answer_headers = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in out)
        return Answer(status, answer_headers, data)


_RELEASED = _Pending.__new__(_Pending)  # what a finished copy points at: nothing


@dataclass(frozen=True, slots=True)
class _Request:
    """What a copy is made of: the request as the primary got it, and its encoding."""

    method: str
    path: str
    query: bytes | None
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client_ip: str
    trace: str
    encoded: bytes


__all__ = ["SHADOW_HEADER", "Mirror"]
