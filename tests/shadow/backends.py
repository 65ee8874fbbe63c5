"""Real HTTP backends for shadow tests: a shop-like orders API whose answers a test
shapes, which records every request it receives and can be told to hang or fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Shape = Callable[[str, str], dict[str, Any]]  # (method, path) → JSON body


def order(method: str, path: str) -> dict[str, Any]:
    """An order as the monolith answers it: stamped with the time of the answer."""
    number = int(path.rstrip("/").rsplit("/", 1)[-1]) if path.rstrip("/")[-1:].isdigit() else 0
    return {
        "id": number,
        "total": f"{number * 10}.00",
        "status": "placed",
        "updated_at": datetime.now(UTC).isoformat(),
    }


@dataclass
class Backend:
    name: str
    url: str
    port: int
    received: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    shape: Shape = order
    mode: str = "answer"  # answer, hang (until released), fail (500), reset (close)
    release: threading.Event = field(default_factory=threading.Event)
    seen: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, test: Callable[[list[tuple[str, str, dict[str, str]]]], bool],
                 timeout: float = 10) -> None:  # fmt: skip
        with self.seen:
            if not self.seen.wait_for(lambda: test(self.received), timeout):
                raise AssertionError(f"{self.name} received only {self.received}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        backend = self.server.backend
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        with backend.seen:
            backend.received.append(
                (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            backend.seen.notify_all()
        if backend.mode == "hang":
            backend.release.wait(30)
        if backend.mode == "reset":
            self.close_connection = True
            self.connection.close()
            return
        status = 500 if backend.mode == "fail" else 200
        payload = json.dumps(backend.shape(self.command, self.path.split("?")[0])).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    backend: Backend


@contextmanager
def backend(name: str, shape: Shape = order) -> Iterator[Backend]:
    server = _Server(("127.0.0.1", 0), _Handler)
    port = int(server.server_address[1])
    server.backend = Backend(name, f"http://127.0.0.1:{port}", port, shape=shape)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.backend
    finally:
        server.backend.release.set()
        server.shutdown()
        server.server_close()
