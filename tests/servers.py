"""Real processes for tests: throwaway PostgreSQL databases and gunicorn on port 0.

A ``MonolithServer`` is the monolith as production runs it (gunicorn, several workers
and threads) on a port the kernel picks; the port is read from gunicorn's own
"Listening at" line, so there is no guessing and no sleeping.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from extracted.orders.store import OrderStore
from facade.aws_local import Endpoints
from facade.routing.loader import load_table
from facade.sync.conflict import TwoWay

PG_URL = os.environ.get("STRANGLER_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
# Registration-heavy tests would spend most of their time in PBKDF2 otherwise.
FAST_HASHERS = (
    "django.contrib.auth.hashers.MD5PasswordHasher,django.contrib.auth.hashers.PBKDF2PasswordHasher"
)
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+) \((\d+)\)")


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def psql_url(url: str) -> str:
    """The same database URL in the form psycopg accepts."""
    return url.replace("postgres://", "postgresql://", 1)


@contextmanager
def scratch_database(prefix: str = "strangler_t") -> Iterator[str]:
    """Create an empty PostgreSQL database for the duration of the block; yield its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_url = psql_url(_with_db(PG_URL, "test"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(PG_URL, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(*args: str, env: Mapping[str, str], module: str = "monolith.manage") -> str:
    """Run ``python -m monolith.manage ARGS`` (or another ``module``) and return its stdout
    (raises on failure)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


SERVICE_TOKEN = "test-service-token-0123456789"
# the sample's two-way pair of order streams: its lifecycle and id split
SAMPLE_ROUTING = load_table(Path(__file__).resolve().parents[1] / "routing.yaml")


def _orders_pair() -> tuple[TwoWay, int]:
    pair = SAMPLE_ROUTING.stream("orders-to-lambda").two_way
    assert pair is not None
    assert pair.id_split is not None
    return pair, pair.id_split


ORDERS_PAIR, ORDERS_ID_SPLIT = _orders_pair()
ORDERS_ID_BASE = ORDERS_ID_SPLIT - 1  # the orders function's ids are above it


def orders_store(table: str, client: Any, cls: type[OrderStore] = OrderStore) -> OrderStore:
    """The orders function's store as the sample configures it (its side of the pair)."""
    return cls(table, id_base=ORDERS_ID_BASE, client=client, two_way=ORDERS_PAIR)


@dataclass
class Served:
    """A server process started by the tests, on a port the kernel picked."""

    base_url: str
    process: subprocess.Popen[str]
    log: list[str]


@dataclass
class MonolithServer(Served):
    database_url: str
    staff_token: str


def _pump(stream: object, sink: list[str], lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sink.append(line)
        lines.put(line)


@contextmanager
def served(
    argv: list[str], env: Mapping[str, str], announce: re.Pattern[str], start_timeout: float = 60
) -> Iterator[Served]:
    """Run ``argv`` until the block ends; its URL's port comes from the line that
    matches ``announce`` (group 1). SIGTERM at the end, as a process manager does."""
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, log, lines), daemon=True).start()
    try:
        port = None
        while port is None:
            try:
                line = lines.get(timeout=start_timeout)
            except queue.Empty:
                raise RuntimeError(f"{argv[2:4]} did not start:\n" + "".join(log)) from None
            match = announce.search(line)
            if match:
                port = int(match.group(1))
            elif process.poll() is not None and lines.empty():
                raise RuntimeError(f"{argv[2:4]} exited:\n" + "".join(log))
        yield Served(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _gunicorn(config: str, app: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--config", f"python:{config}",
        "--bind", "127.0.0.1:0", "--workers", str(workers), "--threads", str(threads), app,
    ]  # fmt: skip


@contextmanager
def monolith_server(
    database_url: str, *, workers: int = 2, threads: int = 8, start_timeout: float = 60
) -> Iterator[MonolithServer]:
    """Migrate and seed ``database_url``, then serve it with gunicorn on a free port."""
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "DJANGO_PASSWORD_HASHERS": FAST_HASHERS,
        "STRANGLER_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage(
        "seed", "--products", "120", "--customers", "30", "--orders", "200", "--seed", "7", env=env
    )
    token = manage("issue_token", "admin@example.com", env=env).strip()
    argv = _gunicorn("monolith.gunicorn_conf", "monolith.wsgi", workers, threads)
    with served(argv, env, LISTENING, start_timeout) as server:
        yield MonolithServer(server.base_url, server.process, server.log, database_url, token)


@contextmanager
def catalog_server(
    database_url: str, source_url: str, *, workers: int = 1, threads: int = 8
) -> Iterator[Served]:
    """The catalog service on ``database_url``, filled from the monolith's database."""
    env = {"CATALOG_DATABASE_URL": database_url}
    catalog = "extracted.catalog.manage"
    manage("migrate", "--noinput", "-v", "0", env=env, module=catalog)
    manage("import_catalog", "--source", source_url, "--if-empty", env=env, module=catalog)
    argv = _gunicorn("extracted.catalog.gunicorn_conf", "extracted.catalog.wsgi", workers, threads)
    with served(argv, env, LISTENING) as server:
        yield server


def orders_environment(monolith_url: str, aws: Endpoints, table: str) -> dict[str, str]:
    """The orders function's configuration, pointed at the local AWS stand-ins."""
    return {
        **aws.environment(),
        **SAMPLE_ROUTING.sync_environment("orders"),
        "ORDERS_TABLE": table,
        "ORDERS_OWNER_URL": monolith_url,
        "STRANGLER_SERVICE_TOKEN": SERVICE_TOKEN,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


ORDERS_ANNOUNCE = re.compile(r"orders function on http://127\.0\.0\.1:(\d+)")


@contextmanager
def orders_function(env: Mapping[str, str]) -> Iterator[Served]:
    """The orders Lambda behind a local HTTP front (API Gateway HTTP API events)."""
    argv = [sys.executable, "-m", "extracted.orders.local", "--port", "0"]
    with served(argv, env, ORDERS_ANNOUNCE) as server:
        yield server
