"""A real HTTP backend for proxy tests: it answers with what it received, as JSON.

Paths with a meaning: ``/slow/<seconds>`` answers after a delay, ``/status/<code>``
answers with that status, ``/chunked`` answers with a chunked body, ``/hop`` answers
with hop-by-hop headers the proxy must remove, anything else echoes.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle on, each response would wait for
    # the peer's delayed ACK (40 ms). Production servers turn it off; so does this one.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        self.server.received.append(path)
        if path.startswith("/slow/"):
            time.sleep(float(path.split("/")[2]))
        status = int(path.split("/")[2]) if path.startswith("/status/") else 200
        server = self.server
        if server.fail_rate and server.random.random() < server.fail_rate:
            status = 500
        if server.delay:
            time.sleep(server.delay)
        echo = {
            "backend": self.server.name,
            "method": self.command,
            "path": path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body": body.decode("latin-1"),
        }
        payload = json.dumps(echo).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        if path == "/hop":
            self.send_header("keep-alive", "timeout=5")
            self.send_header("connection", "keep-alive, x-private")
            self.send_header("x-private", "internal")
        if path == "/chunked":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in (payload[:10], payload[10:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # socketserver's default backlog of 5 drops SYNs under bursts
    name = ""
    fail_rate = 0.0  # this share of answers is a 500, whatever the path
    delay = 0.0  # seconds added to every answer
    random = random.Random(7)
    received: list[str]


@dataclass
class Upstream:
    name: str
    url: str
    port: int
    received: list[str]  # the path of every request it was sent, in order


@contextmanager
def upstream(name: str, *, fail_rate: float = 0.0, delay: float = 0.0) -> Iterator[Upstream]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.name = name
    server.fail_rate, server.delay = fail_rate, delay
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    try:
        yield Upstream(name, f"http://127.0.0.1:{port}", port, server.received)
    finally:
        server.shutdown()
        server.server_close()
