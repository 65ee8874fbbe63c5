"""The copies themselves, made in the shadow process (``facade.shadow.recorder``), never
in a facade worker.

A worker hands over, for each copied request, a ``Job``: the request as the primary got
it and the primary's whole answer. Here the job becomes its copies:

- **the caps** — at most ``shadow.max_concurrent`` copies in flight per route (one
  shadow process per worker, so per worker too). Past it a job waits for a free slot, in
  a waiting room as large as the cap and for at most ``shadow.timeout``: jobs arrive in
  bursts when this process had no CPU for a while (it gets only what the workers leave),
  and the room absorbs those; a job that finds the room full, or waited too long, is
  dropped and counted (``dropped:concurrency``), never sent late;
- **the copies** — the request as the primary got it (same method, path, query,
  headers and Host; no rewriting) plus ``X-Strangler-Shadow: read`` (or ``write``), to
  the shadow backend; and for ``shadow.noise`` of the safe requests a second copy to the
  backend that served the primary, whose answer teaches the comparison what differs by
  nature. HTTP copies go over this process's own connection pools, Lambda copies to its
  own execution environments (never the primary's); each must answer within
  ``shadow.timeout`` or is an error;
- **the pair** — once the copies' answers are in, the primary's answer and theirs go to
  ``record`` to be compared, redacted and stored.

Every failure of a copy ends in ``count`` (``dropped:<why>`` or ``error:<kind>``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from facade.proxy.lambda_target import MAX_REQUEST_BODY, LambdaInvoker, Throttled
from facade.proxy.upstream import Pool, UpstreamConnection
from facade.routing.model import SAFE_METHODS, SHARE_TOTAL, Backend, BackendKind, Shadow
from facade.shadow.compare import Answer

log = logging.getLogger("strangler.shadow")

SHADOW_HEADER = b"x-strangler-shadow"
SHADOW, NOISE = "shadow", "noise"
IDLE_CONNECTIONS = 4096  # per shadow backend
SWEEP = 0.05  # seconds between checks of the copies' deadlines
Headers = tuple[tuple[bytes, bytes], ...]


class Job(NamedTuple):
    """One copied request, as a worker sends it (as a plain tuple: ``Job._make`` here)."""

    route: str
    store: Path
    rules: Shadow
    method: str
    path: str
    query: bytes | None
    headers: Headers  # the request's, as the client sent them
    body: bytes
    client_ip: str
    trace: str
    override: bytes  # the override header's name, lower-case: never copied
    port: int  # the facade's listening port (X-Forwarded-Port)
    shadow: Backend  # receives the copy
    primary: Backend  # served the primary (and receives the noise copy)
    status: int  # the primary's answer
    answer_headers: list[tuple[bytes, bytes]]
    answer_body: bytes
    handed: float  # time.monotonic() when the worker handed it over (one clock for all)


class Pair(NamedTuple):
    """A request, the primary's answer, and the answers of its copies."""

    route: str
    store: Path
    rules: Shadow
    method: str
    path: str
    query: str
    headers: Headers
    primary: Answer
    shadow: Answer | None  # None: the shadow copy failed (counted already)
    noise: Answer | None  # the primary's second answer, if this pair was sampled


Record = Callable[[Pair], None]
Count = Callable[[str, Path, str], None]  # (route, store, "dropped:<why>" | "error:<kind>")


def answer(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
    """An answer as the comparison reads it: header names lower-case, as text."""
    return Answer(
        status, tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers), body
    )


class _TooLarge(Exception):
    """A copy's answer is over ``shadow.max_body_bytes``."""


class _Pending:
    """The answers of one job's copies, as they come in."""

    __slots__ = ("copies", "dropped", "expected", "job")

    def __init__(self, job: Job, expected: int) -> None:
        self.job = job
        self.expected = expected
        self.copies: dict[str, Answer | None] = {}
        self.dropped = False  # counted as dropped already (once per request)


class _Copy:
    """One copy over HTTP: an ``upstream.Exchange`` collecting the answer through
    callbacks, as the proxy's own requests do (no task unless a connection is opened)."""

    __slots__ = (
        "backend", "conn", "copier", "deadline", "encoded", "finished", "head", "headers",
        "kind", "limit", "pending", "pieces", "retried", "safe", "size", "status",
    )  # fmt: skip

    def __init__(
        self, copier: Copier, pending: _Pending, kind: str, backend: Backend, encoded: bytes,
        deadline: float,
    ) -> None:  # fmt: skip
        method = pending.job.method
        self.copier = copier
        self.pending = pending
        self.kind = kind
        self.backend = backend
        self.encoded = encoded
        self.head = method == "HEAD"
        self.safe = method in SAFE_METHODS
        self.deadline = deadline
        self.limit = pending.job.rules.max_body_bytes
        self.conn: UpstreamConnection | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.pieces: list[bytes] = []
        self.size = 0
        self.retried = False
        self.finished = False

    def send(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.send(self, self.encoded, self.head, 3600.0)  # the copier's sweep times it

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
            self.copier._copied(self, None, "dropped:body")
            return
        self.copier._copied(self, answer(self.status, self.headers, b"".join(self.pieces)), "")

    def upstream_failed(self, kind: str, detail: str, retryable: bool) -> None:
        self.conn = None
        if self.finished:
            return
        if retryable and self.safe and not self.retried:
            # a pooled connection the backend had just closed: the copy never arrived
            self.retried = True
            self.copier._connect(self)
            return
        self.copier._copied(self, None, f"error:{self.kind}_{kind}")

    def release(self) -> None:
        """A finished copy stays in the deadline heap until its deadline (``timeout``
        after it was sent): it keeps nothing but that. Thousands of finished copies with
        their requests and answers alive made every full collection of the garbage
        collector walk them — pauses of 100 ms and more."""
        self.pending = _RELEASED
        self.encoded = b""
        self.headers = []
        self.pieces = []

    def expire(self, problem: str = "") -> None:
        """Ended unanswered: past its deadline (``error:<kind>_timeout``) or ``problem``."""
        conn, self.conn = self.conn, None
        self.copier._copied(self, None, problem or f"error:{self.kind}_timeout")
        if conn is not None and conn.transport is not None:
            conn.transport.abort()  # late: never reused


_RELEASED = _Pending.__new__(_Pending)  # what a finished copy points at: nothing


class Copier:
    """The copies of one facade worker: its pools, environments and caps."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        record: Record,
        count: Count,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.loop = loop
        self._record = record
        self._count = count
        self._random = (rng or random.Random()).random  # noqa: S311 - sampling, not a secret
        self._pools: dict[str, Pool] = {}
        self._lambdas: LambdaInvoker | None = None
        self.in_flight: dict[str, int] = {}
        # jobs waiting for a slot, oldest first: (since, job, with a noise copy)
        self.waiting: dict[str, deque[tuple[float, Job, bool]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # connecting, and Lambda copies
        # HTTP copies by deadline (finished ones leave when their deadline comes up)
        self._deadlines: list[tuple[float, int, _Copy]] = []
        self._sequence = itertools.count()
        self._sweeper: asyncio.TimerHandle | None = None
        from facade.proxy.server import HOP_BY_HOP, REPLACED_UPSTREAM  # defined once, there

        # never copied as they came: hop-by-hop, set again for the copy, the copy's mark
        self._not_copied = HOP_BY_HOP | REPLACED_UPSTREAM | {SHADOW_HEADER}

    def start(self, job: Job) -> None:
        """Send a job's copies. Never raises: a copy's trouble is counted, not spread."""
        rules = job.rules
        if time.monotonic() - job.handed >= rules.timeout:
            # it waited in the pipe while this process had no CPU: never sent late
            self._count(job.route, job.store, "dropped:backlog")
            return
        # a safe request's noise copy is drawn now; with it, the job needs two slots
        noise = (
            job.method in SAFE_METHODS
            and rules.max_concurrent >= 2
            and self._random() * SHARE_TOTAL < rules.noise
        )
        self._admit(job, noise)

    def _admit(self, job: Job, noise: bool) -> None:
        try:
            if self.in_flight.get(job.route, 0) + 1 + noise > job.rules.max_concurrent:
                waiting = self.waiting.setdefault(job.route, deque())
                if len(waiting) >= job.rules.max_concurrent:
                    self._count(job.route, job.store, "dropped:concurrency")
                else:
                    waiting.append((job.handed, job, noise))
                return
            self._start(job, noise)
        except Exception:
            log.exception("shadow copy of %s %s failed to start", job.method, job.path)
            self._count(job.route, job.store, "error:shadow_start")

    def busy(self) -> int:
        """Copies in flight and jobs waiting for a slot."""
        return sum(self.in_flight.values()) + sum(len(w) for w in self.waiting.values())

    def stop(self) -> None:
        """The end: every copy still in flight or waiting is counted (``dropped:shutdown``)."""
        for route, waiting in self.waiting.items():
            for _, job, _ in waiting:
                self._count(route, job.store, "dropped:shutdown")
            waiting.clear()
        for _, _, copy in self._deadlines:
            if not copy.finished:
                copy.expire("dropped:shutdown")
        self._deadlines.clear()
        for task in list(self.tasks):
            task.cancel()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self.tasks:
            task.cancel()
        for pool in self._pools.values():
            pool.close()
        if self._lambdas is not None:
            self._lambdas.close()

    # -- the copies ---------------------------------------------------------------------

    def _start(self, job: Job, noise: bool) -> None:
        pending = _Pending(job, 2 if noise else 1)
        encoded = _encode(job, self._not_copied | {job.override})
        targets = [(SHADOW, job.shadow)]
        if noise:
            targets.append((NOISE, job.primary))
        for kind, backend in targets:
            self.in_flight[job.route] = self.in_flight.get(job.route, 0) + 1
            self._send(pending, kind, backend, encoded)

    def _send(self, pending: _Pending, kind: str, backend: Backend, encoded: bytes) -> None:
        if backend.kind is BackendKind.LAMBDA and backend.handler:
            task = self.loop.create_task(self._lambda_copy(pending, kind, backend))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        deadline = self.loop.time() + pending.job.rules.timeout
        copy = _Copy(self, pending, kind, backend, encoded, deadline)
        heapq.heappush(self._deadlines, (deadline, next(self._sequence), copy))
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

    def _copied(self, copy: _Copy, found: Answer | None, problem: str) -> None:
        if copy.finished:
            return
        copy.finished = True
        pending = copy.pending
        copy.release()
        self._settle(pending, copy.kind, found, problem)

    def _settle(self, pending: _Pending, kind: str, found: Answer | None, problem: str) -> None:
        job = pending.job
        self.in_flight[job.route] -= 1
        if self.waiting.get(job.route):
            self.loop.call_soon(self._next, job.route)
        if problem.startswith("dropped:"):
            if not pending.dropped:  # a request is dropped once, whichever copy says so
                pending.dropped = True
                self._count(job.route, job.store, problem)
        elif problem:
            self._count(job.route, job.store, problem)
        pending.copies[kind] = found
        if len(pending.copies) < pending.expected:
            return
        shadow, noise = pending.copies.get(SHADOW), pending.copies.get(NOISE)
        if shadow is None and noise is None:
            return
        self._record(
            Pair(
                job.route, job.store, job.rules, job.method, job.path,
                (job.query or b"").decode("latin-1"), job.headers,
                answer(job.status, job.answer_headers, job.answer_body), shadow, noise,
            )
        )  # fmt: skip

    def _next(self, route: str) -> None:
        """Start the jobs waiting for slots that have come free (the late ones dropped)."""
        waiting = self.waiting.get(route)
        now = time.monotonic()
        while waiting:
            since, job, noise = waiting[0]
            if self.in_flight.get(route, 0) + 1 + noise > job.rules.max_concurrent:
                return
            waiting.popleft()
            if now - since >= job.rules.timeout:
                self._count(job.route, job.store, "dropped:concurrency")
            else:
                self._admit(job, noise)

    async def _lambda_copy(self, pending: _Pending, kind: str, backend: Backend) -> None:
        rules = pending.job.rules
        found: Answer | None = None
        problem = ""
        try:
            async with asyncio.timeout(rules.timeout):
                found = await self._invoke(backend, pending.job, rules.timeout)
        except TimeoutError:
            problem = f"error:{kind}_timeout"
        except _TooLarge:
            problem = "dropped:body"
        except Throttled:
            problem = "dropped:concurrency"
        except asyncio.CancelledError:  # the shadow process stops
            self._settle(pending, kind, None, "dropped:shutdown")
            raise
        except Exception as exc:  # the handler failed, or answered what ALB refuses
            problem = f"error:{kind}_failed"
            log.debug("shadow copy to %s failed: %r", backend.name, exc)
        self._settle(pending, kind, found, problem)

    async def _invoke(self, backend: Backend, job: Job, timeout: float) -> Answer:
        if len(job.body) > MAX_REQUEST_BODY:
            raise _TooLarge()
        if self._lambdas is None:
            # environments of the copier's own: a slow shadow never holds the primary's
            self._lambdas = LambdaInvoker(queue=0)
        mark = b"read" if job.method in SAFE_METHODS else b"write"
        skip = {SHADOW_HEADER, job.override}
        sent = [(n, v) for n, v in job.headers if n.lower() not in skip]
        sent.append((SHADOW_HEADER, mark))
        status, out, data = await self._lambdas.invoke(
            backend, job.method, job.path, job.query, sent, job.body, timeout, job.client_ip,
            job.trace, 0,
        )  # fmt: skip
        return answer(status, out, data)


def _encode(job: Job, skip: frozenset[bytes]) -> bytes:
    """The copy as raw HTTP/1.1, with the headers the primary got (``facade.proxy.server``
    forwards the same): the client's but hop-by-hop ones (and those its Connection
    names) and those set again — X-Forwarded-For/Proto/Port/Host, the trace id, the
    length — and the shadow mark."""
    target = job.path.encode("latin-1") + (b"?" + job.query if job.query else b"")
    parts = [job.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    forwarded: list[bytes] = []
    host: bytes | None = None
    for name, value in job.headers:
        lname = name.lower()
        if lname == b"connection":  # the headers it names are hop-by-hop too
            skip = skip | {t.strip().lower() for t in value.split(b",")}
        elif lname == b"x-forwarded-for":
            forwarded.append(value)
        elif lname == b"host" and host is None:
            host = value
    for name, value in job.headers:
        if name.lower() not in skip:
            parts += (name, b": ", value, b"\r\n")
    xff = b", ".join([*forwarded, job.client_ip.encode("latin-1")])
    mark = b"read" if job.method in SAFE_METHODS else b"write"
    parts += (
        b"x-forwarded-for: ", xff, b"\r\nx-forwarded-proto: http\r\nx-forwarded-port: ",
        str(job.port).encode(), b"\r\n",
    )  # fmt: skip
    if host is not None:
        parts += (b"x-forwarded-host: ", host, b"\r\n")
    parts += (
        b"x-amzn-trace-id: ", job.trace.encode("latin-1"), b"\r\n", SHADOW_HEADER, b": ",
        mark, b"\r\n",
    )  # fmt: skip
    if job.body or job.method in ("POST", "PUT", "PATCH"):
        parts += (b"content-length: ", str(len(job.body)).encode(), b"\r\n")
    parts += (b"\r\n", job.body)
    return b"".join(parts)


__all__ = ["SHADOW_HEADER", "Copier", "Job", "Pair"]
