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
   answers are all in, the pair goes to the recorder's thread (``facade.shadow.recorder``)
   to be compared, redacted and stored.

Nothing on this path can change, delay or fail the primary: the copies are tasks of
their own, started after the primary was sent on its way, and every failure of theirs
ends in a counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facade.proxy.choice import parse_cookies
from facade.proxy.lambda_target import MAX_REQUEST_BODY, LambdaInvoker, Throttled
from facade.proxy.upstream import Pool
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
from facade.shadow.recorder import Pair, Recorder

if TYPE_CHECKING:
    from facade.proxy.metrics import Metrics

log = logging.getLogger("strangler.shadow")

SHADOW_HEADER = b"x-strangler-shadow"
SHADOW, NOISE = "shadow", "noise"


class _Exchange:
    """Collects one copy's answer from an upstream connection (``upstream.Exchange``)."""

    __slots__ = ("future", "headers", "limit", "pieces", "size", "status")

    def __init__(self, future: asyncio.Future[Answer], limit: int) -> None:
        self.future = future
        self.limit = limit
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.pieces: list[bytes] = []
        self.size = 0

    def upstream_headers(self, status: int, headers: list[tuple[bytes, bytes]], _: bool) -> None:
        self.status, self.headers = status, headers

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        pass

    def upstream_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size <= self.limit:
            self.pieces.append(data)

    def upstream_done(self) -> None:
        if self.future.done():
            return
        if self.size > self.limit:
            self.future.set_exception(_TooLarge())
            return
        headers = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in self.headers)
        self.future.set_result(Answer(self.status, headers, b"".join(self.pieces)))

    def upstream_failed(self, kind: str, detail: str, retryable: bool) -> None:
        if not self.future.done():
            self.future.set_exception(_Failed(kind, retryable))


class _TooLarge(Exception):
    pass


class _Failed(Exception):
    def __init__(self, kind: str, retryable: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retryable = retryable


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
        self.tasks: set[asyncio.Task[None]] = set()
        self._recorder: Recorder | None = None

    @property
    def recorder(self) -> Recorder:
        """The recorder's thread, started with the first copy (most tables shadow nothing)."""
        if self._recorder is None:
            loop, metrics = self.loop, self.metrics

            def outcome(route: str, result: str) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody scrapes
                    loop.call_soon_threadsafe(metrics.shadow, route, result)

            self._recorder = Recorder(outcome)
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
        primary's answer, or None when nothing is copied."""
        rules = route.shadow
        if rules is None or method not in rules.methods or served_by == rules.backend:
            return None
        if not self._sampled(route, rules.share, header_map):
            return None
        store = Path(table.source).parent / rules.store
        noise = method in SAFE_METHODS and self._random() * SHARE_TOTAL < rules.noise
        request = Pair(
            route.name, store, rules, method, path, (query or b"").decode("latin-1"),
            tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers),
            Answer(0, (), b""), None, None,
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
        targets = [(SHADOW, table.backends[rules.backend])]
        if noise:
            targets.append((NOISE, table.backends[served_by]))
        for kind, backend in targets:
            self.in_flight[route.name] = self.in_flight.get(route.name, 0) + 1
            task = self.loop.create_task(
                self._send(pending, kind, backend, encoded, method, path, query, headers, body,
                           client_ip, trace)
            )  # fmt: skip
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return Capture(rules.max_body_bytes, pending.primary_done)

    def close(self) -> None:
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
        self.recorder.count(request.store, request.route, name)

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

    async def _send(
        self,
        pending: _Pending,
        kind: str,
        backend: Backend,
        encoded: bytes,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client_ip: str,
        trace: str,
    ) -> None:
        request = pending.request
        rules = request.rules
        answer: Answer | None = None
        try:
            async with asyncio.timeout(rules.timeout):
                if backend.kind is BackendKind.LAMBDA and backend.handler:
                    answer = await self._invoke(
                        backend, method, path, query, headers, body, client_ip, trace,
                        rules.timeout,
                    )  # fmt: skip
                else:
                    answer = await self._exchange(backend, encoded, method, rules.max_body_bytes)
        except TimeoutError:
            self.count(request, f"error:{kind}_timeout")
        except _TooLarge:
            pending.drop("body")
        except Throttled:
            pending.drop("concurrency")
        except _Failed as exc:
            self.count(request, f"error:{kind}_{exc.kind}")
        except OSError as exc:
            self.count(request, f"error:{kind}_connect")
            log.debug("shadow copy to %s failed: %r", backend.name, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a Lambda handler's failure, a bad answer
            self.count(request, f"error:{kind}_failed")
            log.debug("shadow copy to %s failed: %r", backend.name, exc)
        finally:
            self.in_flight[request.route] -= 1
        pending.copy_done(kind, answer)

    async def _exchange(self, backend: Backend, encoded: bytes, method: str, limit: int) -> Answer:
        pool = self._pools.get(backend.url or "")
        if pool is None:
            pool = self._pools[backend.url or ""] = Pool(self.loop, *backend.address)
        for attempt in (1, 2):
            conn = pool.take_idle() if attempt == 1 else None
            if conn is None:
                conn = await pool.connect(timeout=3600)  # bounded by the copy's timeout
            future: asyncio.Future[Answer] = self.loop.create_future()
            conn.send(_Exchange(future, limit), encoded, method == "HEAD", 3600)
            try:
                return await future
            except _Failed as exc:
                if not (exc.retryable and attempt == 1 and method in SAFE_METHODS):
                    raise
            except BaseException:
                if conn.transport is not None:
                    conn.transport.abort()  # late, or cancelled: never reuse
                raise
        raise AssertionError("unreachable")

    async def _invoke(
        self,
        backend: Backend,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client_ip: str,
        trace: str,
        timeout: float,
    ) -> Answer:
        if len(body) > MAX_REQUEST_BODY:
            raise _TooLarge()
        if self._lambdas is None:
            # environments of the mirror's own: a slow shadow never holds the primary's
            self._lambdas = LambdaInvoker(queue=0)
        mark = b"read" if method in SAFE_METHODS else b"write"
        sent = [(n, v) for n, v in headers if n.lower() != SHADOW_HEADER]
        sent.append((SHADOW_HEADER, mark))
        status, out, data = await self._lambdas.invoke(
            backend, method, path, query, sent, body, timeout, client_ip, trace, 0
        )
        answer_headers = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in out)
        return Answer(status, answer_headers, data)


__all__ = ["SHADOW_HEADER", "Mirror"]
