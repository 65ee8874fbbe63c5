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
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import importlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

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


def default_concurrency() -> int:
    return max(1, int(os.environ.get("STRANGLER_LAMBDA_CONCURRENCY", "8")))


class LambdaInvoker:
    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or default_concurrency()
        self._pools: dict[str, concurrent.futures.ProcessPoolExecutor] = {}
        # spawn, not fork: the facade's event loop and threads must not be copied
        self._context = multiprocessing.get_context("spawn")

    def _environments(self, spec: str) -> concurrent.futures.ProcessPoolExecutor:
        pool = self._pools.get(spec)
        if pool is None:
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.concurrency, mp_context=self._context
            )
            self._pools[spec] = pool
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
            if n.lower() not in (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port")
        ]
        prior = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-for"]
        xff = ", ".join([*prior, client_ip]) if prior else client_ip
        forwarded += [
            (b"x-forwarded-for", xff.encode("latin-1")),
            (b"x-forwarded-proto", b"http"),
            (b"x-forwarded-port", str(listen_port).encode()),
        ]
        if not any(n.lower() == b"x-amzn-trace-id" for n, _ in headers):
            forwarded.append((b"x-amzn-trace-id", trace.encode()))
        event = alb_event(backend, method, path, query, forwarded, body)
        function_name = str(backend.aws.get("function") or backend.name)
        loop = asyncio.get_running_loop()
        result = await asyncio.wait_for(
            loop.run_in_executor(
                self._environments(backend.handler),
                _invoke_in_environment,
                backend.handler,
                event,
                function_name,
                timeout,
            ),
            timeout,
        )
        return http_response(result, backend.multi_value_headers)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()
