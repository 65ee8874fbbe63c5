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
from urllib.parse import urlsplit, urlunsplit

import psycopg

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


def manage(*args: str, env: Mapping[str, str]) -> str:
    """Run ``python -m monolith.manage ARGS`` and return its stdout (raises on failure)."""
    result = subprocess.run(
        [sys.executable, "-m", "monolith.manage", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclass
class MonolithServer:
    base_url: str
    database_url: str
    staff_token: str
    process: subprocess.Popen[str]
    log: list[str]


def _pump(stream: object, sink: list[str], lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sink.append(line)
        lines.put(line)


@contextmanager
def monolith_server(
    database_url: str, *, workers: int = 2, threads: int = 8, start_timeout: float = 60
) -> Iterator[MonolithServer]:
    """Migrate and seed ``database_url``, then serve it with gunicorn on a free port."""
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "DJANGO_PASSWORD_HASHERS": FAST_HASHERS,
    }
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage(
        "seed", "--products", "120", "--customers", "30", "--orders", "200", "--seed", "7", env=env
    )
    token = manage("issue_token", "admin@example.com", env=env).strip()

    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--config", "python:monolith.gunicorn_conf",
            "--bind", "127.0.0.1:0", "--workers", str(workers), "--threads", str(threads),
            "monolith.wsgi",
        ],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    log: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, log, lines), daemon=True).start()
    try:
        port = None
        while port is None:
            try:
                line = lines.get(timeout=start_timeout)
            except queue.Empty:
                raise RuntimeError("gunicorn did not start:\n" + "".join(log)) from None
            match = LISTENING.search(line)
            if match:
                port = int(match.group(1))
            elif process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + "".join(log))
        yield MonolithServer(f"http://127.0.0.1:{port}", database_url, token, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
