"""``strangler serve`` as a real process on a free port, for tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.facade.conftest import LineReader

ANNOUNCE = re.compile(r"strangler serve: http://127\.0\.0\.1:(\d+) .* admin (http://\S+)")


@dataclass
class Proxy:
    url: str
    admin_url: str  # the admin listener: health, metrics, admin API
    routing: Path
    process: subprocess.Popen[str]
    output: LineReader

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kw)  # type: ignore[arg-type]

    def admin(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.admin_url, timeout=10, **kw)  # type: ignore[arg-type]

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.admin_url}/__facade/health", timeout=5).json())


@contextmanager
def proxy(
    routing: Path, *, workers: int = 1, env: dict[str, str] | None = None, access_log: bool = False
) -> Iterator[Proxy]:
    argv = [
        sys.executable, "-m", "facade.cli", "serve", "--routing", str(routing), "--port", "0",
        "--admin-port", "0", "--workers", str(workers),
        "--access-log" if access_log else "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=routing.parent,
    )
    output = LineReader(process)
    try:
        line = output.wait_for("strangler serve:", timeout=30)
        match = ANNOUNCE.search(line)
        assert match, line
        yield Proxy(f"http://127.0.0.1:{match.group(1)}", match.group(2), routing, process, output)
    except BaseException:
        # the proxy's own account of what happened is the first thing to read
        print(f"--- strangler serve output ---\n{output.text}", file=sys.stderr)
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.finish()
