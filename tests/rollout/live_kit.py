"""What the live rollout and version-canary tests share: traffic on threads through a
real facade, and the ``strangler rollout|canary`` command line run against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx

from tests.facade.proxy import Proxy

T = TypeVar("T")


@contextmanager
def traffic(url: str, seen: Callable[[httpx.Response | None], T]) -> Iterator[list[T]]:
    """``GET /api/orders/1`` on two threads as fast as answered until the block ends;
    yields ``seen(answer)`` of each (``seen(None)`` when no answer came)."""
    found: list[T] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                try:
                    found.append(seen(client.get("/api/orders/1")))
                except httpx.HTTPError:
                    found.append(seen(None))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield found
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


def command(facade: Proxy, group: str, *args: str) -> subprocess.Popen[str]:
    """``strangler GROUP ARGS…`` on the facade's routing file, output merged, unbuffered
    (start, resume and abort read the facade's metrics)."""
    argv = [sys.executable, "-m", "facade.cli", group, *args, "--routing", str(facade.routing)]
    if args[0] in ("start", "resume", "abort"):
        argv += ["--metrics-url", facade.admin_url]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=facade.routing.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def status(facade: Proxy, group: str) -> dict[str, object]:
    """``strangler GROUP status orders --json``."""
    done = subprocess.run(
        [sys.executable, "-m", "facade.cli", group, "status", "orders", "--json",
         "--routing", str(facade.routing)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))
