"""Lambda backends run in-process: HTTP ⇄ the ALB Lambda target event, as ALB does it.

The request becomes the event ALB sends to a Lambda target (``requestContext.elb``,
``httpMethod``, ``path``, query string parameters and headers — or their
``multiValue…`` forms when the target group has multi-value headers on — and the body,
base64-encoded unless it is text). ALB passes query parameters as they arrived,
without URL-decoding them; with single values, the last of repeated names wins; header
names are lower-cased. The handler's answer (``statusCode``, ``headers`` or
``multiValueHeaders``, ``body``, ``isBase64Encoded``) becomes the HTTP response; a
handler that raises, or answers something else, is a 502 as on ALB.

Each handler runs as Lambda runs it: in execution environments that take one event at
a time. An environment is a worker process (started on demand, up to
``STRANGLER_LAMBDA_CONCURRENCY``, default 8, per handler and facade worker) that imports
the handler once and keeps its module state between events — the warm-start behaviour
handlers are written for, and the reason they may keep per-invocation state in
globals, as aws-lambda-powertools' event handler does. A slow handler never stalls the
event loop, and concurrent requests never share an environment.

The limits are Lambda's and ALB's: an invocation that outlives its timeout has its
environment killed (a new one starts for the next event), exactly as AWS ends a timed-out
environment, so a handler can never finish a write after its client was told 504; an
invocation waiting for a free environment waits within its own timeout and is dropped,
never run, once its client has been answered or has gone; at most
``STRANGLER_LAMBDA_QUEUE`` (default 100) invocations wait per handler, more are
throttled (503); request bodies over 1 MB are refused (413) and responses over 1 MB are
a 502, as ALB does for Lambda targets.

A backend with a ``canary:`` block runs two versions of the function
(``facade.proxy.lambda_versions`` picks one per invocation), each in environments of its
own — a version from another code directory imports its modules from there — and every
invocation is recorded with its version (``record``), as CloudWatch counts a function's
invocations by ``ExecutedVersion``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import ctypes
import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from facade.proxy.lambda_versions import pick
from facade.routing.model import Backend

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/problem+json",
    "application/xhtml+xml",
)
DEFAULT_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/{name}/0000000000000000"
)

Handler = Callable[[dict[str, Any], Any], Any]
# (backend, version, status, seconds) of one invocation of a version
Record = Callable[[str, str, int, float], None]

PR_SET_PDEATHSIG = 1  # prctl(2)

# ALB's limits for Lambda targets: the request body, and the whole response document
MAX_REQUEST_BODY = 1024 * 1024
MAX_RESPONSE = 1024 * 1024


class Throttled(Exception):
    """Every environment is busy and the queue of waiting invocations is full."""


class EnvironmentFailed(Exception):
    """The environment's process died during an invocation."""


class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers read."""

    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _is_text(headers: list[tuple[bytes, bytes]]) -> bool:
    content_type = ""
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-encoding":
            return False
        if lname == b"content-type":
            content_type = value.decode("latin-1").lower()
    return not content_type or content_type.startswith(TEXT_TYPES)


def _query_pairs(query: bytes | None) -> list[tuple[str, str]]:
    if not query:
        return []
    pairs = []
    for part in query.decode("latin-1").split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def alb_event(
    backend: Backend,
    method: str,
    path: str,
    query: bytes | None,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> dict[str, Any]:
    arn = str(backend.aws.get("target_group_arn") or DEFAULT_ARN.format(name=backend.name))
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": arn}},
        "httpMethod": method,
        "path": path,
    }
    pairs = _query_pairs(query)
    named = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers]
    if backend.multi_value_headers:
        mq: dict[str, list[str]] = {}
        for name, value in pairs:
            mq.setdefault(name, []).append(value)
        mh: dict[str, list[str]] = {}
        for name, value in named:
            mh.setdefault(name, []).append(value)
        event["multiValueQueryStringParameters"] = mq
        event["multiValueHeaders"] = mh
    else:
        event["queryStringParameters"] = dict(pairs)
        event["headers"] = dict(named)
    if body and not _is_text(headers):
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = body.decode("utf-8", "surrogateescape") if body else ""
        event["isBase64Encoded"] = False
    return event


class BadLambdaResponse(ValueError):
    """The handler answered something ALB would not accept."""


def http_response(result: Any, multi_value: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if not isinstance(result, dict):
        raise BadLambdaResponse(f"a handler must return a dict, got {type(result).__name__}")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise BadLambdaResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[bytes, bytes]] = []
    if multi_value and "multiValueHeaders" in result:
        for name, values in (result.get("multiValueHeaders") or {}).items():
            for value in values:
                headers.append((str(name).encode("latin-1"), str(value).encode("latin-1")))
    else:
        for name, value in (result.get("headers") or {}).items():
            headers.append((str(name).encode("latin-1"), str(value).encode("latin-1")))
    headers = [h for h in headers if h[0].lower() not in (b"content-length", b"transfer-encoding")]
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise BadLambdaResponse("body must be a string (base64 for binary)")
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return status, headers, raw


_handlers: dict[str, Handler] = {}  # per execution environment (worker process)


def load_handler(spec: str) -> Handler:
    handler = _handlers.get(spec)
    if handler is None:
        module_name, _, function = spec.partition(":")
        handler = getattr(importlib.import_module(module_name), function)
        _handlers[spec] = handler
    return handler


def _invoke_in_environment(
    spec: str, event: dict[str, Any], function_name: str, timeout: float
) -> Any:
    return load_handler(spec)(event, LambdaContext(function_name, timeout))


def _die_with(parent: int) -> None:
    """Linux: this process is killed when ``parent`` dies, however it dies (kill -9
    included), as AWS ends an environment whose caller is gone — no handler runs on
    with nobody to answer and no timeout to end it. Set before any event is taken."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's end still stops it
        return
    if os.getppid() != parent:  # it died before the signal was set
        os._exit(0)


def _environment_main(
    conn: multiprocessing.connection.Connection,
    spec: str,
    code: str | None = None,
    parent: int | None = None,
) -> None:
    """An execution environment: one event at a time, until the facade closes the pipe."""
    if parent is not None:
        _die_with(parent)
    if code is not None:  # a version's own code directory comes first, as its zip would
        sys.path.insert(0, code)
    while True:
        try:
            event, function_name, timeout = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = (
                "ok",
                _invoke_in_environment(spec, event, function_name, timeout),
            )
        except Exception as exc:
            answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except (TypeError, ValueError, AttributeError) as exc:  # not picklable
            conn.send(("error", f"the handler's answer cannot be sent: {exc}"))


def default_concurrency() -> int:
    return max(1, int(os.environ.get("STRANGLER_LAMBDA_CONCURRENCY", "8")))


def default_queue() -> int:
    return max(0, int(os.environ.get("STRANGLER_LAMBDA_QUEUE", "100")))


class Environment:
    """One worker process and the pipe events travel on."""

    def __init__(self, context: SpawnContext, spec: str, code: str | None = None) -> None:
        self.conn, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_environment_main, args=(child, spec, code, os.getpid()), daemon=True
        )
        self.process.start()
        child.close()

    async def run(self, event: dict[str, Any], function_name: str, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[str, Any]] = loop.create_future()
        fd = self.conn.fileno()

        def readable() -> None:
            loop.remove_reader(fd)
            if answer.done():
                return
            try:
                answer.set_result(self.conn.recv())
            except (EOFError, OSError) as exc:
                answer.set_exception(EnvironmentFailed(f"the environment exited: {exc!r}"))

        self.conn.send((event, function_name, timeout))
        loop.add_reader(fd, readable)
        try:
            kind, value = await answer
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
        if kind == "error":
            raise RuntimeError(value)
        return value

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            self.process.join(1)


class Environments:
    """The environments of one handler: at most ``concurrency`` of them, and a bounded
    first-come queue of invocations waiting for one."""

    def __init__(
        self,
        spec: str,
        context: SpawnContext,
        concurrency: int,
        queue: int,
        code: str | None = None,
    ) -> None:
        self.spec = spec
        self.code = code
        self.context = context
        self.concurrency = concurrency
        self.queue_limit = queue
        self.idle: list[Environment] = []
        self.started: set[Environment] = set()
        self.running = 0  # environments started and not killed (idle or busy)
        self.waiting: collections.deque[asyncio.Future[Environment | None]] = collections.deque()

    async def _acquire(self) -> Environment:
        if self.idle:
            return self.idle.pop()
        if self.running < self.concurrency:
            return self._start()
        if len(self.waiting) >= self.queue_limit:
            raise Throttled(f"{self.concurrency} environments busy, {len(self.waiting)} waiting")
        turn: asyncio.Future[Environment | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            environment = await turn
        except BaseException:
            # answered (timeout) or gone (cancelled) before its turn: it never runs
            with contextlib.suppress(ValueError):
                self.waiting.remove(turn)
            if turn.done() and not turn.cancelled():
                self._release(turn.result())  # its environment, or its slot, goes on
            raise
        if environment is None:  # a slot freed by a killed environment
            return self._start()
        return environment

    def _start(self) -> Environment:
        self.running += 1
        try:
            environment = Environment(self.context, self.spec, self.code)
        except BaseException:
            self.running -= 1
            raise
        self.started.add(environment)
        return environment

    def _release(self, environment: Environment | None) -> None:
        """Hand an environment (or, for None, a free slot) to the first waiter."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(environment)
                return
        if environment is not None:
            self.idle.append(environment)

    def _discard(self, environment: Environment) -> None:
        environment.kill()
        self.started.discard(environment)
        self.running -= 1
        self._release(None)

    async def invoke(self, event: dict[str, Any], function_name: str, timeout: float) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        async with asyncio.timeout_at(deadline):
            environment = await self._acquire()
        run = asyncio.ensure_future(environment.run(event, function_name, timeout))
        try:
            async with asyncio.timeout_at(deadline):
                result = await asyncio.shield(run)
        except TimeoutError:
            run.cancel()
            self._discard(environment)  # as AWS: the environment ends with the invocation
            raise
        except asyncio.CancelledError:
            # the client left: the invocation finishes, as on AWS, and the environment
            # is handed on after it (or killed at the timeout)
            def settle(_: object) -> None:
                if run.cancelled() or run.exception() is not None:
                    self._discard(environment)
                else:
                    self._release(environment)

            run.add_done_callback(settle)
            loop = asyncio.get_running_loop()
            loop.call_at(deadline, lambda: run.done() or run.cancel())
            raise
        except EnvironmentFailed:
            self._discard(environment)
            raise
        except BaseException:
            self._release(environment)
            raise
        self._release(environment)
        return result

    def close(self) -> None:
        for turn in self.waiting:
            turn.cancel()
        self.waiting.clear()
        for environment in self.started:
            environment.kill()
        self.started.clear()
        self.idle.clear()


class LambdaInvoker:
    def __init__(
        self,
        concurrency: int | None = None,
        queue: int | None = None,
        record: Record | None = None,
    ) -> None:
        self.concurrency = concurrency or default_concurrency()
        self.queue = default_queue() if queue is None else queue
        self.record = record
        self._pools: dict[tuple[str, str | None], Environments] = {}
        # spawn, not fork: the facade's event loop and threads must not be copied
        self._context = multiprocessing.get_context("spawn")

    def _environments(self, spec: str, code: str | None = None) -> Environments:
        pool = self._pools.get((spec, code))
        if pool is None:
            pool = Environments(spec, self._context, self.concurrency, self.queue, code)
            self._pools[(spec, code)] = pool
        return pool

    async def invoke(
        self,
        backend: Backend,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float,
        client_ip: str,
        trace: str,
        listen_port: int,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert backend.handler is not None
        forwarded = [
            (n, v)
            for n, v in headers
            if n.lower()
            not in (
                b"x-forwarded-for",
                b"x-forwarded-proto",
                b"x-forwarded-port",
                b"x-forwarded-host",
                b"x-amzn-trace-id",
            )
        ]
        prior = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-for"]
        xff = ", ".join([*prior, client_ip]) if prior else client_ip
        forwarded += [
            (b"x-forwarded-for", xff.encode("latin-1")),
            (b"x-forwarded-proto", b"http"),
            (b"x-forwarded-port", str(listen_port).encode()),
            (b"x-amzn-trace-id", trace.encode("latin-1")),
        ]
        event = alb_event(backend, method, path, query, forwarded, body)
        function_name = str(backend.aws.get("function") or backend.name)
        version = pick(backend)
        if version is None:
            pool = self._environments(backend.handler)
        else:
            pool = self._environments(version[1].handler, version[1].code)
        started = time.monotonic()
        status = 502
        try:
            result = await pool.invoke(event, function_name, timeout)
            if isinstance(result, dict) and len(str(result.get("body") or "")) > MAX_RESPONSE:
                raise BadLambdaResponse(f"the response is over ALB's {MAX_RESPONSE} byte limit")
            answer = http_response(result, backend.multi_value_headers)
            status = answer[0]
            return answer
        except TimeoutError:
            status = 504
            raise
        except Throttled:
            status = 0  # never ran: CloudWatch counts it under Throttles, not Invocations
            raise
        except asyncio.CancelledError:
            status = 0  # the client left: the invocation's outcome is not known here
            raise
        finally:
            if version is not None and self.record is not None and status:
                self.record(backend.name, version[0], status, time.monotonic() - started)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
