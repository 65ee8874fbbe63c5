"""The AWS-API stand-ins of the local stack, on loopback.

``python -m facade.aws_local --port 4566 --dynamodb-port 4567 --sqs-port 4568 --setup
module:function`` serves the AWS APIs with moto's server on one port — except DynamoDB
and SQS, which npm stand-ins serve on their own ports because they keep up under load
and moto does not: dynalite answers 4-14 times moto's DynamoDB requests per second
(moto's cost grows with the table, ``loadtests/bench_dynamodb.py``), fauxqs moves
SQS messages many times faster than moto once a backlog builds
(``loadtests/bench_sqs.py``). Without Node.js or ``npm ci``, moto serves them too, and a
warning says so. Then each set-up function is called (with the stand-ins'
environment set, so plain boto3 clients reach them) to create the tables and queues the
services expect, and only then ``GET /__strangler/ready`` answers 200 — the health
check ``strangler up`` waits on.

Code reaches the stand-ins the way it reaches AWS, through boto3, with only
configuration changed: ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_DYNAMODB`` and dummy
credentials (``Endpoints.environment``). The stand-ins validate far less than AWS; the
toolkit's own validation enforces AWS's limits and never relies on them to reject
anything.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from facade.exceptions import ConfigError
from facade.routing.model import LocalAws, RoutingTable

READY_PATH = "/__strangler/ready"
REGION = "us-east-1"

log = logging.getLogger("strangler.aws")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Endpoints:
    aws: str  # moto: every API without a stand-in of its own
    dynamodb: str  # dynalite, or moto when dynalite is not installed
    sqs: str = ""  # fauxqs, or moto when fauxqs is not installed ("": moto)

    def environment(self) -> dict[str, str]:
        return {
            **local_environment(self.aws),
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            "AWS_ENDPOINT_URL_SQS": self.sqs or self.aws,
        }


def _node_modules() -> list[Path]:
    return [base / "node_modules" for base in (Path.cwd(), Path(__file__).resolve().parents[1])]


def dynalite_command() -> list[str] | None:
    """``node …/dynalite/cli.js``, if Node.js and ``npm ci``'s dynalite are here."""
    node = shutil.which("node")
    if node is None:
        return None
    for modules in _node_modules():
        cli = modules / "dynalite" / "cli.js"
        if cli.is_file():
            return [node, str(cli)]
    return None


def fauxqs_command() -> list[str] | None:
    """``node facade/standins/fauxqs.mjs``, if Node.js and ``npm ci``'s fauxqs are here."""
    node = shutil.which("node")
    launcher = Path(__file__).resolve().parent / "standins" / "fauxqs.mjs"
    installed = (Path(__file__).resolve().parents[1] / "node_modules" / "fauxqs").is_dir()
    return [node, str(launcher)] if node and installed else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the stand-in gets SIGTERM when this process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def node_server(name: str, argv: list[str], host: str, port: int) -> Iterator[str]:
    """Run a Node.js stand-in until the block ends; its first line must say it listens."""
    process = subprocess.Popen(  # noqa: S603 - our own command
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if "listening" not in first.lower():
            rest = first + (process.stdout.read() if process.poll() is not None else "")
            raise RuntimeError(f"{name} did not start on {host}:{port}: {rest.strip()}")
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dynalite_argv(host: str, port: int, data: Path | None) -> list[str]:
    command = dynalite_command()
    if command is None:
        raise FileNotFoundError("dynalite is not installed (needs Node.js and `npm ci`)")
    fast = ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    argv = [*command, "--host", host, "--port", str(port), *fast]
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
        argv += ["--path", str(data)]
    return argv


def fauxqs_argv(host: str, port: int) -> list[str]:
    command = fauxqs_command()
    if command is None:
        raise FileNotFoundError("fauxqs is not installed (needs Node.js and `npm ci`)")
    return [*command, host, str(port)]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stand_ins(table: RoutingTable) -> LocalAws:
    """The stand-ins a routing file names (``local.aws``), for commands run without --aws."""
    if table.local.aws is None:
        raise ConfigError(f"{table.source}: no local.aws block; use --aws for AWS itself")
    return table.local.aws


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


def _setup_function(spec: str) -> Callable[[], object]:
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ValueError(f"{spec!r}: use 'package.module:function'")
    func: Callable[[], object] = getattr(importlib.import_module(module_name), function)
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
def running(
    host: str = "127.0.0.1",
    port: int = 0,
    setup: Iterable[str] = (),
    *,
    dynamodb_port: int | None = 0,
    sqs_port: int | None = 0,
    data: Path | None = None,
) -> Iterator[Endpoints]:
    """Serve the stand-ins in this process for the block; yield their endpoints.

    ``dynamodb_port`` / ``sqs_port`` 0 pick a free port; None has moto serve that API.
    ``data`` is where dynalite keeps its tables (in memory without it).
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
    app = _Readiness(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="aws-stand-in", daemon=True)
    thread.start()
    with ExitStack() as stack:
        stack.callback(thread.join, 10)
        stack.callback(server.shutdown)
        dynamodb = endpoint
        if dynamodb_port is not None and dynalite_command() is not None:
            dynamodb = _start(
                stack, "dynalite", lambda p: dynalite_argv(host, p, data), host, dynamodb_port
            )
        elif dynamodb_port is not None:
            log.warning(
                "dynalite is not installed (Node.js + `npm ci`): moto serves DynamoDB, "
                "several times slower under load"
            )
        sqs = endpoint
        if sqs_port is not None and fauxqs_command() is not None:
            sqs = _start(stack, "fauxqs", lambda p: fauxqs_argv(host, p), host, sqs_port)
        elif sqs_port is not None:
            log.warning(
                "fauxqs is not installed (Node.js + `npm ci`): moto serves SQS, "
                "many times slower with a backlog"
            )
        endpoints = Endpoints(endpoint, dynamodb, sqs)
        saved = {k: os.environ.get(k) for k in endpoints.environment()}
        os.environ.update(endpoints.environment())
        try:
            for spec in setup:
                _setup_function(spec)()
                log.info("set up: %s", spec)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        app.ready.set()
        yield endpoints


def _start(
    stack: ExitStack, name: str, argv: Callable[[int], list[str]], host: str, port: int
) -> str:
    if port:
        return stack.enter_context(node_server(name, argv(port), host, port))
    last: RuntimeError | None = None
    for _ in range(5):  # a free port can be taken between the check and the bind
        chosen = free_port(host)
        try:
            return stack.enter_context(node_server(name, argv(chosen), host, chosen))
        except RuntimeError as exc:
            last = exc
    assert last is not None
    raise last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facade.aws_local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--dynamodb-port", type=int, default=4567, help="dynalite's port (0: moto serves it)"
    )
    parser.add_argument(
        "--sqs-port", type=int, default=4568, help="fauxqs's port (0: moto serves it)"
    )
    parser.add_argument("--data", type=Path, default=None, help="dynalite keeps its tables here")
    parser.add_argument(
        "--setup", action="append", default=[], help="module:function, called once it listens"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running(
        args.host,
        args.port,
        args.setup,
        dynamodb_port=args.dynamodb_port or None,
        sqs_port=args.sqs_port or None,
        data=args.data,
    ) as endpoints:
        log.info(
            "AWS APIs on %s, DynamoDB on %s, SQS on %s",
            endpoints.aws,
            endpoints.dynamodb,
            endpoints.sqs,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
