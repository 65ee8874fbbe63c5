"""``strangler serve``: bind once, run one or more worker processes, stop gracefully.

With ``--workers N`` the parent binds the listening socket and forks N workers that all
accept on it (the pre-fork model of gunicorn and nginx); it forwards SIGTERM/SIGINT
(graceful stop) and SIGHUP (reload routing.yaml) to them and replaces a worker that
dies. Each worker runs uvloop, watches routing.yaml itself, and on SIGTERM stops
accepting, lets in-flight requests finish (up to ``grace`` seconds), then exits.

Two listeners: the public one proxies (and answers 404 for ``/__facade/``); the admin
one (``facade.admin.listen``, loopback by default) serves health, metrics and the admin
API and nothing else. Both sockets are bound by the parent and shared by the workers.

The sticky cookie's signing key is the same in every worker and every instance, and
across restarts, so that a canary user keeps their backend: it comes from the variable
named by ``facade.cookie_secret.env`` (``STRANGLER_COOKIE_SECRET``), else the file
``facade.cookie_secret.file``, else the file given by ``--cookie-secret-file`` (created
once, mode 600: what ``strangler up`` passes, under ``var/``), else a random key for this
run only, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from facade.exceptions import ConfigError
from facade.proxy.live import Loaded
from facade.routing.model import RoutingTable

log = logging.getLogger("strangler.facade")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs, prepared by the parent before it forks."""

    sock: socket.socket
    admin_sock: socket.socket
    routing: Path
    loaded: Loaded
    secret: bytes
    access_log: bool
    grace: float


async def _worker_main(spec: WorkerSpec) -> None:
    sock, routing, loaded = spec.sock, spec.routing, spec.loaded
    secret, access_log, grace = spec.secret, spec.access_log, spec.grace
    from facade.proxy.accesslog import AccessLog
    from facade.proxy.admin import internal
    from facade.proxy.live import LiveTable
    from facade.proxy.metrics import Metrics
    from facade.proxy.server import ClientConnection, Facade

    loop = asyncio.get_running_loop()
    live = LiveTable(routing, secret, loaded)
    if live.changed():  # edited since the parent read it: take the edit if it is valid
        live.reload()
    log_stream = sys.stdout if access_log and live.current.table.settings.access_log else None
    metrics = Metrics(os.environ.get("STRANGLER_METRICS_DIR") or None)
    from facade.rollout.metrics import RolloutCollector
    from facade.rollout.state import state_dir

    metrics.registry.register(RolloutCollector(state_dir(Path(routing))))
    facade = Facade(
        live,
        loop,
        metrics=metrics,
        access_log=AccessLog(log_stream, loop),
        internal=internal,
        listen_port=int(sock.getsockname()[1]),
    )
    from facade.dashboard import attach

    attach(facade)  # the dashboard's history starts with the worker
    server = await loop.create_server(lambda: ClientConnection(facade), sock=sock, backlog=2048)
    admin_server = await loop.create_server(
        lambda: ClientConnection(facade, admin=True), sock=spec.admin_sock
    )
    # Everything allocated so far lives as long as the process: keep it out of the
    # collector's way. The young-generation threshold stays at its default on purpose:
    # raising it trades many sub-0.1 ms collections for rare multi-millisecond ones, and
    # those pauses land in the p99 of every request in flight.
    gc.collect()
    gc.freeze()
    watcher = asyncio.ensure_future(live.watch())

    async def share_metrics() -> None:
        while True:
            await asyncio.sleep(1.0)
            metrics.dump()

    sharer = asyncio.ensure_future(share_metrics()) if metrics.shared_dir else None
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, live.reload)
    await stop.wait()
    server.close()
    admin_server.close()
    deadline = time.monotonic() + grace
    while any(c.busy for c in facade.connections) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for connection in list(facade.connections):
        if connection.transport is not None:
            connection.transport.close()
    watcher.cancel()
    if sharer is not None:
        sharer.cancel()
    metrics.dump()
    facade.close()


def _run_worker(spec: WorkerSpec) -> None:
    import uvloop

    uvloop.run(_worker_main(spec))


def cookie_secret(table: RoutingTable, keep: Path | None = None) -> bytes:
    """The sticky cookie's signing key (see the module docstring for the order)."""
    settings = table.settings
    given = os.environ.get(settings.cookie_secret_env, "").strip()
    if given:
        return given.encode()
    if settings.cookie_secret_file:
        path = Path(settings.cookie_secret_file)
        if not path.is_absolute():
            path = Path(table.source).parent / path
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"{table.source}: facade.cookie_secret.file {str(path)!r} cannot be read: "
                f"{exc.strerror}"
            ) from exc
        if not secret:
            raise ConfigError(f"{table.source}: facade.cookie_secret.file {str(path)!r} is empty")
        return secret
    if keep is not None:
        with contextlib.suppress(FileNotFoundError):
            secret = keep.read_bytes().strip()
            if secret:
                return secret
        keep.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32).encode()
        descriptor = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secret + b"\n")
        return secret
    log.warning(
        "no cookie secret (%s or facade.cookie_secret): sticky assignments last until "
        "this process stops",
        settings.cookie_secret_env,
    )
    return secrets.token_bytes(32)


def serve(
    routing: Path,
    loaded: Loaded,
    host: str,
    port: int,
    *,
    admin_host: str | None = None,
    admin_port: int | None = None,
    keep_secret: Path | None = None,
    workers: int = 1,
    access_log: bool = True,
    grace: float = 10.0,
    announce: bool = True,
) -> int:
    settings = loaded.table.settings
    secret = cookie_secret(loaded.table, keep_secret)
    if workers > 1 and "STRANGLER_METRICS_DIR" not in os.environ:
        # Workers share their figures here, so that any worker's scrape shows them all.
        os.environ["STRANGLER_METRICS_DIR"] = tempfile.mkdtemp(prefix="strangler-metrics-")
    sock = bind(host, port)
    try:
        admin_sock = bind(
            admin_host if admin_host is not None else settings.admin_host,
            admin_port if admin_port is not None else settings.admin_port,
        )
    except ConfigError:
        sock.close()
        raise
    spec = WorkerSpec(sock, admin_sock, routing, loaded, secret, access_log, grace)
    bound_host, bound_port = sock.getsockname()[:2]
    admin_bound_host, admin_bound_port = admin_sock.getsockname()[:2]
    if announce:
        print(
            f"strangler serve: http://{bound_host}:{bound_port} · {routing} · "
            f"{workers} worker{'s' if workers > 1 else ''} · pid {os.getpid()} · "
            f"admin http://{admin_bound_host}:{admin_bound_port}",
            flush=True,
        )
    if workers == 1:
        _run_worker(spec)
        return 0

    children: dict[int, int] = {}

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(spec)
            except BaseException:
                logging.getLogger("strangler.facade").exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children[pid] = slot

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for slot in range(workers):
        spawn(slot)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in children:
            continue
        slot = children.pop(pid)
        if not stopping:
            log.error("worker %d exited (status %d); starting a new one", pid, status)
            print(
                f"strangler serve: worker {pid} exited with status {status}; restarting", flush=True
            )
            spawn(slot)
        elif os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
            code = 1
    sock.close()
    admin_sock.close()
    return code
