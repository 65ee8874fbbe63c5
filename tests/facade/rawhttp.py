"""Raw HTTP for the facade's conformance tests: a scripted backend, the facade in this
process, and a client that checks every byte it reads with h11.

The backend reads each request with h11 (server side), so whatever the facade forwards
must be valid HTTP/1.1, and answers with the bytes a *script* returns — any bytes, valid
or not: interim responses, close-delimited bodies, garbage. A request's path chooses its
script (``/s/<name>/…``); without one the answer is a 200 whose body names the request
(``GET /x``), so a test can see which request an answer belongs to.

The facade runs on its own event loop in a thread (uvloop, as ``strangler serve``), so
tests can look at its pools and connections between exchanges.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import h11

from facade.proxy.admin import internal
from facade.proxy.live import LiveTable
from facade.proxy.server import ClientConnection, Facade


@dataclass
class Seen:
    """One request as the backend received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int = 0  # which backend connection carried it (1, 2, …)

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


# A script gets the request and the backend connection's socket; it returns the bytes to
# send, or None once it has sent them itself. ``close`` after sending: ScriptResult.
Script = Callable[[Seen, socket.socket], bytes | None]


def named(seen: Seen) -> bytes:
    return f"{seen.method} {seen.target}".encode()


def ok(seen: Seen, _sock: socket.socket) -> bytes:
    body = b"" if seen.method == "HEAD" else named(seen)
    length = len(named(seen))
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        length,
        body,
    )


class CloseAfter(bytes):
    """Bytes after which the backend closes the connection."""


@dataclass
class ScriptedBackend:
    sock: socket.socket
    scripts: dict[str, Script] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._connection, args=(conn, number), daemon=True).start()

    def _connection(self, conn: socket.socket, number: int) -> None:
        pending = b""
        with conn:
            while True:
                parser = h11.Connection(h11.SERVER)
                if pending:  # (h11 takes b"" for the end of the stream)
                    parser.receive_data(pending)
                request: h11.Request | None = None
                body = b""
                try:
                    while True:
                        event = parser.next_event()
                        if event is h11.NEED_DATA:
                            data = conn.recv(65536)
                            if not data:
                                if request is not None:
                                    self.errors.append("the facade closed mid-request")
                                return
                            parser.receive_data(data)
                        elif isinstance(event, h11.Request):
                            request = event
                        elif isinstance(event, h11.Data):
                            body += event.data
                        elif isinstance(event, h11.EndOfMessage):
                            break
                        elif isinstance(event, h11.ConnectionClosed):
                            return
                except h11.RemoteProtocolError as exc:
                    self.errors.append(f"the facade sent invalid HTTP: {exc}")
                    return
                except OSError:
                    return
                assert request is not None
                pending = parser.trailing_data[0]
                seen = Seen(
                    request.method.decode(),
                    request.target.decode("latin-1"),
                    [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers],
                    body,
                    number,
                )
                self.seen.append(seen)
                parts = seen.target.split("/")
                script = self.scripts.get(parts[2]) if len(parts) > 2 and parts[1] == "s" else None
                try:
                    answer = (script or ok)(seen, conn)
                    if answer is not None:
                        conn.sendall(answer)
                except OSError:
                    return
                if isinstance(answer, CloseAfter):
                    return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@contextlib.contextmanager
def scripted_backend() -> Iterator[ScriptedBackend]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    backend = ScriptedBackend(sock)
    thread = threading.Thread(target=backend.serve, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        backend.close()


@dataclass
class InProcessFacade:
    port: int
    facade: Facade
    loop: asyncio.AbstractEventLoop

    def call(self, function: Callable[[], object], timeout: float = 5) -> object:
        """Run ``function`` on the facade's loop and return its result."""

        async def run() -> object:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)


@contextlib.contextmanager
def facade_in_process(routing: Path, *, sndbuf: int | None = None) -> Iterator[InProcessFacade]:
    """The facade serving ``routing`` on a loopback port; ``sndbuf`` shrinks the kernel's
    send buffer of each client connection, so that a client that does not read fills the
    facade's own buffer (and trips its flow control) after a few kilobytes, not megabytes."""
    import uvloop

    class Connection(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if sndbuf is not None:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            super().connection_made(transport)

    loop = uvloop.new_event_loop()
    ready: dict[str, object] = {}
    started = threading.Event()

    async def start() -> None:
        live = LiveTable(routing, b"conformance-secret")
        facade = Facade(live, loop, internal=internal)
        facade.check_every = 0.1  # timeouts of whole seconds, kept to within 0.1 s
        server = await loop.create_server(lambda: Connection(facade), "127.0.0.1", 0)
        facade.listen_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        ready.update(facade=facade, server=server)
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the facade did not start"
    facade = ready["facade"]
    server = cast(asyncio.AbstractServer, ready["server"])  # uvloop's is not a subclass
    assert isinstance(facade, Facade)
    try:
        yield InProcessFacade(facade.listen_port, facade, loop)
    finally:

        def stop() -> None:
            server.close()
            for connection in list(facade.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            facade.close()
            loop.stop()

        loop.call_soon_threadsafe(stop)
        thread.join(10)


# -- the client side -------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int]
    http_version: str = "1.1"

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


class ProtocolViolation(AssertionError):
    """The facade wrote bytes that are not a well-framed HTTP/1.1 response."""


class ClosedWithoutResponse(AssertionError):
    """The facade closed the connection before the response began."""


class RawClient:
    """A socket to the facade; responses are parsed with h11, in the order asked."""

    def __init__(self, port: int, *, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.raw = b""  # every byte the facade wrote

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self, method: str = "GET", http10: bool = False) -> Response:
        """The next response (with any 1xx before it) for a request of ``method``."""
        conn = h11.Connection(h11.CLIENT)
        # h11 frames a response by the request it answers: tell it, discard the bytes
        # (an HTTP/1.0 request is framed like an HTTP/1.1 one that closes)
        headers = [("host", "x"), *([("connection", "close")] if http10 else [])]
        conn.send(h11.Request(method=method, target="/", headers=headers))
        conn.send(h11.EndOfMessage())
        if self.buffer:  # (h11 takes b"" for the end of the stream)
            conn.receive_data(self.buffer)
        self.buffer = b""
        interim: list[int] = []
        response: h11.Response | None = None
        body = b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolViolation(f"{exc}; bytes so far: {self.raw[-2000:]!r}") from exc
            if event is h11.NEED_DATA:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    raise AssertionError(
                        f"no complete response; so far: {self.raw[-500:]!r}"
                    ) from None
                self.raw += data
                if not data and response is None and not interim:
                    raise ClosedWithoutResponse(f"closed; before that: {self.raw[-500:]!r}")
                conn.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                interim.append(event.status_code)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError(f"closed without a response; got {self.raw[-500:]!r}")
        assert response is not None
        self.buffer = conn.trailing_data[0]
        return Response(
            response.status_code,
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers],
            body,
            interim,
            response.http_version.decode(),
        )

    def closed(self) -> bool:
        """Whether the facade closed the connection with nothing more to read."""
        if self.buffer:
            return False
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return False
        self.raw += data
        self.buffer += data
        return not data


def request(
    method: str, target: str, *headers: str, body: bytes = b"", http10: bool = False
) -> bytes:
    """Request bytes: a Host header, the given header lines, a length when there is a body."""
    lines = [f"{method} {target} HTTP/1.{0 if http10 else 1}", "Host: facade.test", *headers]
    if body and not any(
        h.lower().startswith(("content-length", "transfer-encoding")) for h in headers
    ):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
