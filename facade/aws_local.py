"""The AWS-API stand-in of the local stack: moto's server on loopback.

``python -m facade.aws_local --port 4566 --setup package.module:function`` serves the
AWS APIs (DynamoDB, SQS, ELBv2, ...) on one port, then calls each set-up function with
the endpoint URL (to create the tables and queues the services expect), and only then
answers ``GET /__strangler/ready`` with 200 — the health check ``strangler up`` waits on.

Code under test reaches it the way it reaches AWS, through boto3, with only
configuration changed: ``AWS_ENDPOINT_URL`` and dummy credentials (``local_environment``).
The stand-in validates far less than AWS; the toolkit's own validation enforces AWS's
limits and must never rely on the stand-in to reject anything.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict

READY_PATH = "/__strangler/ready"
REGION = "us-east-1"

log = logging.getLogger("strangler.aws")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def local_environment(endpoint: str) -> dict[str, str]:
    """What a process needs to send its boto3 calls to the stand-in."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "2",  # unimplemented calls answer 500: do not retry them long
    }


class Credentials(TypedDict):
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


# boto3 client keyword arguments for the stand-in (pass ``endpoint_url`` too).
CREDENTIALS = Credentials(
    region_name=REGION,
    aws_access_key_id="local",
    aws_secret_access_key="local",  # noqa: S106 - the stand-in checks no credentials
)


def _setup_function(spec: str) -> Callable[[str], object]:
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ValueError(f"{spec!r}: use 'package.module:function'")
    func: Callable[[str], object] = getattr(importlib.import_module(module_name), function)
    return func


class _Readiness:
    """Wraps moto's WSGI app: ``READY_PATH`` says whether set-up has finished."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.ready = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == READY_PATH:
            status = "200 OK" if self.ready.is_set() else "503 Service Unavailable"
            body = b'{"ready": true}' if self.ready.is_set() else b'{"ready": false}'
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return self.app(environ, start_response)


@contextmanager
def running(host: str = "127.0.0.1", port: int = 0, setup: Iterable[str] = ()) -> Iterator[str]:
    """Serve the stand-in in this process for the block; yield its endpoint URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
    app = _Readiness(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    bound_port = server.server_address[1]
    endpoint = f"http://{host}:{bound_port}"
    thread = threading.Thread(target=server.serve_forever, name="aws-stand-in", daemon=True)
    thread.start()
    try:
        saved = {k: os.environ.get(k) for k in local_environment(endpoint)}
        os.environ.update(local_environment(endpoint))
        try:
            for spec in setup:
                _setup_function(spec)(endpoint)
                log.info("set up: %s", spec)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        app.ready.set()
        yield endpoint
    finally:
        server.shutdown()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facade.aws_local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--setup", action="append", default=[], help="module:function called with the endpoint"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running(args.host, args.port, args.setup) as endpoint:
        log.info("AWS APIs on %s (ready: %s%s)", endpoint, endpoint, READY_PATH)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
