"""The facade's HTTP framing, exchange by exchange: raw bytes in, every byte out checked.

Each case sends request bytes to the facade (running in this process, see
``tests.facade.rawhttp``), lets a scripted backend answer with exact bytes, and reads
the answers with h11 — an independent parser — on the client side, while the backend
reads what the facade forwards with h11 too. Whatever the bytes, the client must see
exactly one well-framed response per request, in order, each naming its own request,
and the backend must see only what it should.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.facade.conftest import free_port
from tests.facade.rawhttp import (
    CloseAfter,
    ClosedWithoutResponse,
    InProcessFacade,
    ProtocolViolation,
    RawClient,
    ScriptedBackend,
    Seen,
    facade_in_process,
    named,
    ok,
    request,
    scripted_backend,
)

ROUTING = """\
version: 1
facade:
  timeouts: {{connect: 1, read: 3, lambda: 5}}
  max_body_bytes: 100000
  limits: {{header_timeout: 1, idle_timeout: 2, connections: 64}}
backends:
  raw: {{kind: monolith, url: "{url}"}}
  fn: {{kind: lambda, handler: "tests.facade.lambda_handlers:status"}}
routes:
  - name: fn
    match: {{paths: ["/lambda/*"]}}
    targets: {{fn: 100}}
  - name: internal
    match: {{paths: ["/internal/*"]}}
    fixed_response: {{status: 404, content_type: application/json, body: '{{"error": "no"}}'}}
default: raw
"""


@pytest.fixture(scope="module")
def backend() -> Iterator[ScriptedBackend]:
    with scripted_backend() as backend:
        yield backend


@pytest.fixture(scope="module")
def facade(
    backend: ScriptedBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessFacade]:
    path: Path = tmp_path_factory.mktemp("conformance") / "routing.yaml"
    path.write_text(ROUTING.format(url=backend.url))
    with facade_in_process(path, sndbuf=4096) as running:
        yield running


@pytest.fixture
def client(facade: InProcessFacade) -> Callable[..., RawClient]:
    def connect(**kw: object) -> RawClient:
        return RawClient(facade.port, **kw)  # type: ignore[arg-type]

    return connect


def response_bytes(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return b"HTTP/1.1 %s\r\n%scontent-length: %d\r\n\r\n%s" % (
        status.encode(),
        head.encode(),
        len(body),
        body,
    )


# -- 1. interim responses --------------------------------------------------------------


def test_a_backend_103_is_relayed_and_each_client_gets_its_own_answer(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 1: llhttp ends a message at a 1xx; the exchange must not end there."""
    backend.scripts["hints"] = lambda seen, _: (
        b"HTTP/1.1 103 Early Hints\r\nlink: </app.css>; rel=preload\r\n\r\n"
        + response_bytes("200 OK", named(seen))
    )
    backend.scripts["interim"] = lambda seen, _: (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        + response_bytes("200 OK", named(seen))
    )
    with client() as first, client() as second:
        first.send(request("GET", "/s/hints/first"))
        answer = first.read_response()
        assert (answer.interim, answer.body) == ([103], b"GET /s/hints/first")
        second.send(request("GET", "/s/interim/second"))
        answer = second.read_response()
        assert (answer.interim, answer.body) == ([], b"GET /s/interim/second")
        for side in (first, second):  # the pooled connections carry nothing left over
            side.send(request("GET", f"/after/{id(side)}"))
            assert side.read_response().body == f"GET /after/{id(side)}".encode()


def test_an_interim_response_in_its_own_packet_does_not_end_the_exchange(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    def split(seen: Seen, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nlink: </a.js>\r\n\r\n")
        time.sleep(0.05)  # the backend thinking, not test synchronisation
        sock.sendall(response_bytes("200 OK", named(seen)))

    backend.scripts["split"] = split
    with client() as one:
        one.send(request("GET", "/s/split/x"))
        assert one.read_response().body == b"GET /s/split/x"


def test_a_response_head_over_albs_32_kb_is_a_502(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    backend.scripts["fat"] = lambda seen, _: response_bytes(
        "200 OK", named(seen), *[f"x-fat-{i}: {'f' * 1000}" for i in range(40)]
    )
    with client() as one:
        one.send(request("GET", "/s/fat/x") + request("GET", "/s/none/after-fat"))
        assert one.read_response().status == 502
        assert one.read_response().body == b"GET /s/none/after-fat"


def test_a_101_from_a_backend_is_a_502(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    backend.scripts["switch"] = lambda seen, _: CloseAfter(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )
    with client() as one:
        one.send(request("GET", "/s/switch/x"))
        assert one.read_response().status == 502


# -- 3. Upgrade and CONNECT ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        request("POST", "/chat", "Connection: Upgrade", "Upgrade: websocket", body=b"side effect"),
        request("GET", "/chat", "Connection: upgrade", "Upgrade: h2c"),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    ],
    ids=["post-upgrade", "h2c", "connect"],
)
def test_upgrade_and_connect_get_one_400_and_nothing_is_forwarded(
    raw: bytes, backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 3: the request was carried out by the backend and the client told 501."""
    before = len(backend.seen)
    with client() as one:
        one.send(request("GET", "/s/none/before") + raw)
        assert one.read_response().body == b"GET /s/none/before"
        refused = one.read_response()
        assert refused.status == 400
        assert refused.header("connection") == ["close"]
        assert one.closed()
    assert [s.target for s in backend.seen[before:]] == ["/s/none/before"]


# -- 4. 100-continue -------------------------------------------------------------------


def test_100_continue_is_never_written_inside_an_earlier_response(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 4: the facade wrote ``100 Continue`` into a response still streaming."""
    gate = threading.Event()

    def stream(seen: Seen, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        gate.wait(5)
        sock.sendall(b"4\r\nlast\r\n0\r\n\r\n")

    backend.scripts["stream"] = stream
    with client(timeout=0.3) as one:
        one.send(request("GET", "/s/stream/1"))
        while b"first" not in one.raw:
            one.raw += one.sock.recv(65536)
        one.buffer = one.raw
        one.send(request("POST", "/s/none/2", "Expect: 100-continue", "Content-Length: 4"))
        with pytest.raises(TimeoutError):  # not now: the first response is not finished
            one.sock.recv(65536)
        gate.set()
        one.sock.settimeout(5)
        first = one.read_response()
        assert first.body == b"firstlast"
        one.send(b"data")
        second = one.read_response("POST")
        assert (second.interim, second.body) == ([100], b"POST /s/none/2")


# -- 5. close-delimited bodies ----------------------------------------------------------


def test_a_close_delimited_response_is_relayed_whole(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 5: the client got a chunked body with no last chunk."""
    backend.scripts["eof"] = lambda seen, _: CloseAfter(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n" + named(seen) + b" to the end"
    )
    with client() as one:
        one.send(request("GET", "/s/eof/11"))
        answer = one.read_response()
        assert answer.body == b"GET /s/eof/11 to the end"
        one.send(request("GET", "/s/none/next"))  # the client's connection stays usable
        assert one.read_response().body == b"GET /s/none/next"
    with client() as old:
        old.send(request("GET", "/s/eof/10", http10=True))
        answer = old.read_response(http10=True)
        assert answer.body == b"GET /s/eof/10 to the end"
        assert answer.header("transfer-encoding") == []
        assert old.closed()


# -- 6. bodiless answers, HTTP/1.0 -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("HEAD", "/__facade/health", 404),  # the public listener has no facade endpoints
        ("HEAD", "/internal/x", 404),  # a deny rule's fixed response
        ("HEAD", "/%2e%2e/x", 400),
        ("HEAD", "/lambda/status/200", 200),
        ("GET", "/lambda/status/204", 204),
        ("GET", "/lambda/status/304", 304),
        ("HEAD", "/s/eof/head", 200),
    ],
)
def test_no_body_on_head_204_or_304_whoever_answers(
    method: str, target: str, status: int, client: Callable[..., RawClient]
) -> None:
    """Defect 6: facade-written and Lambda answers carried a body on HEAD, 204 and 304."""
    with client() as one:
        one.send(request(method, target) + request("GET", "/s/none/after"))
        answer = one.read_response(method)
        assert (answer.status, answer.body) == (status, b"")
        if status == 204:
            assert answer.header("content-length") == []
        # a body the client did not expect would be read as the start of the next answer
        assert one.read_response().body == b"GET /s/none/after"


def test_a_lambda_answering_1xx_is_a_502(client: Callable[..., RawClient]) -> None:
    with client() as one:
        one.send(request("GET", "/lambda/status/103"))
        assert one.read_response().status == 502


def test_head_keeps_the_backends_connection_close(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 6: after HEAD, a connection the backend said it would close was reused."""
    backend.scripts["headclose"] = lambda seen, _: (
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n"
    )
    with client() as one:
        one.send(request("HEAD", "/s/headclose/x"))
        assert one.read_response("HEAD").status == 200
        one.send(request("POST", "/s/none/y", body=b"once"))
        assert one.read_response("POST").body == b"POST /s/none/y"
    head, post = backend.seen[-2:]
    assert head.target == "/s/headclose/x"
    assert post.connection != head.connection


def test_an_http10_client_gets_a_readable_body_and_keep_alive_if_it_asks(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    backend.scripts["chunked"] = lambda seen, _: (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with client() as old:
        old.send(request("GET", "/s/none/a", "Connection: keep-alive", http10=True))
        answer = old.read_response(http10=True)
        assert answer.body == b"GET /s/none/a"
        assert answer.header("connection") == ["keep-alive"]
        old.send(request("GET", "/s/chunked/b", "Connection: keep-alive", http10=True))
        answer = old.read_response(http10=True)
        assert (answer.body, answer.header("transfer-encoding")) == (b"abc", [])
        assert old.closed()  # the length was unknown: the close ends the body


# -- 7. trailers -----------------------------------------------------------------------


def test_request_trailers_never_become_headers(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    """Defect 7: trailers were merged into the forwarded headers."""
    with client() as one:
        one.send(
            b"POST /s/none/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nbody\r\n0\r\nX-Injected: yes\r\nAuthorization: Bearer forged\r\n\r\n"
        )
        assert one.read_response("POST").body == b"POST /s/none/t"
    seen = backend.seen[-1]
    assert seen.body == b"body"
    assert seen.header("x-injected") == []
    assert seen.header("authorization") == []


# -- 8. backpressure -------------------------------------------------------------------


def _idle_connections_reading(facade: InProcessFacade) -> list[bool]:
    def look() -> list[bool]:
        return [
            conn.transport.is_reading()
            for pool in facade.facade._pools.values()
            for conn in pool._idle
            if conn.transport is not None
        ]

    result = facade.call(look)
    assert isinstance(result, list)
    return result


def _settled(facade: InProcessFacade, deadline: float = 5) -> None:
    """Wait until every client connection of the facade is done with its answer or has
    paused the backend connection that feeds it."""

    def waiting() -> bool:
        return any(
            c.busy and not (c._upstream is not None and c._upstream.paused)
            for c in facade.facade.connections
        )

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not facade.call(waiting):
            return
        time.sleep(0.01)
    raise AssertionError("the facade is still answering")


def test_a_slow_client_never_leaves_a_paused_connection_in_the_pool(
    backend: ScriptedBackend, facade: InProcessFacade, client: Callable[..., RawClient]
) -> None:
    """Defect 8: the write that paused the backend connection also ended its response,
    and the connection went back to the pool paused; the next request on it hung."""
    blob = b"x" * 100_000
    backend.scripts["blob"] = lambda seen, _: response_bytes("200 OK", blob)
    for trial in range(5):
        with client(rcvbuf=4096) as slow:
            slow.send(request("GET", f"/s/blob/{trial}"))
            _settled(facade)  # the whole answer is with the facade, unread by the client
            assert all(_idle_connections_reading(facade))
            assert slow.read_response().body == blob
        with client() as next_one:
            next_one.send(request("GET", f"/s/none/{trial}"))
            assert next_one.read_response().body == f"GET /s/none/{trial}".encode()


def test_a_client_that_does_not_read_holds_bounded_memory(
    backend: ScriptedBackend, facade: InProcessFacade, client: Callable[..., RawClient]
) -> None:
    """Defect 8: later responses to a slow client were buffered without bound."""
    blob = b"y" * 300_000
    backend.scripts["mega"] = lambda seen, _: response_bytes("200 OK", blob)
    with client(rcvbuf=4096, timeout=10) as slow:
        slow.send(b"".join(request("GET", f"/s/mega/{i}") for i in range(6)))
        deadline = time.monotonic() + 1
        largest = 0
        while time.monotonic() < deadline:  # watch the facade while the client reads nothing
            buffered = facade.call(
                lambda: max(
                    (c.transport.get_write_buffer_size() for c in facade.facade.connections
                     if c.transport is not None),
                    default=0,
                )
            )  # fmt: skip
            assert isinstance(buffered, int)
            largest = max(largest, buffered)
            time.sleep(0.05)
        assert largest < 600_000, f"{largest} bytes buffered for one client"
        for _ in range(6):
            assert slow.read_response().body == blob


# -- 2. limits on the client side ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request("GET", "/" + "a" * 17_000), 414),
        (request("GET", "/x", "X-Big: " + "b" * 17_000), 431),
        (request("GET", "/x", *[f"X-H{i}: " + "c" * 15_000 for i in range(5)]), 431),
        (request("GET", "/x", *[f"X-N{i}: n" for i in range(101)]), 431),
    ],
    ids=["request-line", "one-header", "all-headers", "header-count"],
)
def test_oversized_request_heads_are_refused_as_alb_does(
    raw: bytes,
    status: int,
    backend: ScriptedBackend,
    facade: InProcessFacade,
    client: Callable[..., RawClient],
) -> None:
    """Defect 2: heads of any size were accepted into memory and forwarded."""
    before = len(backend.seen)
    refused = sum(facade.facade.metrics.refused.values())
    with client() as one:
        one.send(raw)
        answer = one.read_response()
        assert answer.status == status
        assert one.closed()
    assert len(backend.seen) == before
    assert sum(facade.facade.metrics.refused.values()) == refused + 1  # counted


def test_an_endless_header_is_cut_off_without_being_buffered(
    client: Callable[..., RawClient],
) -> None:
    with client() as one:
        one.send(b"GET /x HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(1000):  # 64 MB, read and dropped once the limit is passed
                one.send(b"z" * 65536)
        assert one.read_response().status == 431


def test_pipelined_requests_are_read_ahead_only_up_to_the_limit(
    backend: ScriptedBackend, facade: InProcessFacade, client: Callable[..., RawClient]
) -> None:
    """Defect 2: 33 pipelined requests with full bodies were queued per connection."""
    gate = threading.Event()

    def held(seen: Seen, sock: socket.socket) -> bytes:
        gate.wait(5)
        return ok(seen, sock)

    backend.scripts["slowest"] = held
    count, body = 100, b"b" * 20_000
    settings = facade.facade.live.current.table.settings
    one_read = 256 * 1024  # what one read from the socket can hold beyond the limits
    with client() as one:
        one.sock.sendall(request("POST", "/s/slowest/0", body=b"first"))
        sender = threading.Thread(
            target=lambda: one.sock.sendall(
                b"".join(request("POST", f"/s/none/{i}", body=body) for i in range(1, count))
            ),
            daemon=True,
        )
        sender.start()
        for _ in range(20):  # while the first answer is held back, look at the queue
            queued = facade.call(
                lambda: max((c.queued_bytes for c in facade.facade.connections), default=0)
            )
            assert isinstance(queued, int)
            assert queued <= settings.max_body_bytes + one_read
            time.sleep(0.02)
        gate.set()
        for i in range(count):
            expected = f"POST /s/{'slowest' if i == 0 else 'none'}/{i}"
            assert one.read_response("POST").body == expected.encode()
        sender.join(5)


def test_a_slow_request_head_gets_408(client: Callable[..., RawClient]) -> None:
    """Defect 2: a client sending its head a byte at a time held the connection for ever."""
    with client() as slow:
        slow.send(b"GET /s/none/slowloris HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = slow.read_response()
        assert answer.status == 408
        assert 1 <= time.monotonic() - started < 3
        assert slow.closed()


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    client: Callable[..., RawClient],
) -> None:
    with client() as idle:
        idle.send(request("GET", "/s/none/once"))
        assert idle.read_response().body == b"GET /s/none/once"
        started = time.monotonic()
        assert idle.closed()
        assert 2 <= time.monotonic() - started < 4


def test_connections_over_the_cap_get_503(
    facade: InProcessFacade, client: Callable[..., RawClient]
) -> None:
    cap = facade.facade.live.current.table.settings.limits.connections
    opened: list[RawClient] = []
    try:
        for _ in range(cap + 1):
            one = client()
            opened.append(one)
            one.send(request("GET", "/s/none/cap"))
            answer = one.read_response()
            if answer.status == 503:
                break
            assert answer.body == b"GET /s/none/cap"
        else:
            raise AssertionError(f"{cap + 1} connections were all served")
        assert len(opened) <= cap + 1
    finally:
        for one in opened:
            one.sock.close()
        _until_served(client)


def _until_served(client: Callable[..., RawClient], within: float = 10.0) -> None:
    """Wait until the facade has seen closed connections go (it hears of a close
    asynchronously), so that the tests after this one find it under its cap again."""
    deadline = time.monotonic() + within
    while True:
        with client() as probe:
            probe.send(request("GET", "/s/none/cap"))
            if probe.read_response().status != 503:
                return
        assert time.monotonic() < deadline, "the facade kept its closed connections"


def test_header_trust_as_alb(backend: ScriptedBackend, client: Callable[..., RawClient]) -> None:
    """Defect 11: the override header reached backends with override off; a client's
    X-Forwarded-Host and malformed X-Amzn-Trace-Id passed through unchanged."""
    with client() as one:
        one.send(
            request(
                "GET",
                "/s/none/trust",
                "X-Strangler-Backend-Override: fn",
                "X-Forwarded-For: 10.0.0.1",
                "X-Forwarded-Proto: https",
                "X-Forwarded-Port: 443",
                "X-Forwarded-Host: evil.example",
                "X-Amzn-Trace-Id: Root=forged",
            )
        )
        assert one.read_response().body == b"GET /s/none/trust"
    seen = backend.seen[-1]
    assert seen.header("x-strangler-backend-override") == []
    assert seen.header("x-forwarded-for") == ["10.0.0.1, 127.0.0.1"]  # appended, as ALB
    assert seen.header("x-forwarded-proto") == ["http"]  # set by the listener, as ALB
    assert seen.header("x-forwarded-port") != ["443"]
    assert seen.header("x-forwarded-host") == ["facade.test"]  # from Host
    (trace,) = seen.header("x-amzn-trace-id")
    assert trace.startswith("Root=1-")


# -- 5. generated exchanges ------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("STRANGLER_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANSWERS = ("length", "chunked", "close", "hints", "continue", "no-content", "not-modified")
_answers: dict[str, str] = {}
_ids = itertools.count()


def _fuzz_answer(seen: Seen, _sock: socket.socket) -> bytes:
    kind = _answers[seen.target.rsplit("/", 1)[1]]
    body = named(seen)
    if kind == "no-content":
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    if kind == "not-modified":
        return b'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n'
    if seen.method == "HEAD":  # the head of what GET would get, no body
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
    if kind == "chunked":
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:3], body[3:]))
        return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    if kind == "close":
        return CloseAfter(b"HTTP/1.1 200 OK\r\n\r\n" + body)
    interim = {
        "hints": b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n",
        "continue": b"HTTP/1.1 100 Continue\r\n\r\n",
    }.get(kind, b"")
    return interim + response_bytes("200 OK", body)


@st.composite
def exchanges(draw: st.DrawFn) -> list[tuple[str, bytes, str, str]]:
    """A pipeline: (method, request bytes, target, how the backend answers) per request."""
    pipeline = []
    for _ in range(draw(st.integers(1, 4))):
        key = str(next(_ids))
        method = draw(st.sampled_from(["GET", "HEAD", "POST", "DELETE"]))
        kind = draw(st.sampled_from(ANSWERS))
        target = f"/s/fz/{draw(st.sampled_from(['a', 'b/c', 'd?q=1']))}/{key}".replace("?q=1/", "/")
        headers = [f"X-Request: {key}"]
        body = b""
        framing = draw(st.sampled_from(["none", "length", "chunked", "trailers"]))
        if method in ("POST", "DELETE") and framing != "none":
            body = draw(st.binary(min_size=0, max_size=64))
        if framing == "length" and body:
            raw = request(method, target, *headers, body=body)
        elif framing in ("chunked", "trailers") and body:
            trailer = "X-Trailer: t\r\n" if framing == "trailers" else ""
            head = request(method, target, *headers, "Transfer-Encoding: chunked")
            raw = head + b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer.encode())
        else:
            raw = request(method, target, *headers)
        if draw(st.booleans()) and method == "POST" and body and framing == "length":
            raw = raw.replace(b"Host:", b"Expect: 100-continue\r\nHost:", 1)
        _answers[key] = kind
        pipeline.append((method, raw, target, kind))
    return pipeline


@FUZZ
@given(pipeline=exchanges(), split=st.integers(1, 200))
def test_generated_pipelines_get_one_framed_answer_each_naming_its_request(
    pipeline: list[tuple[str, bytes, str, str]],
    split: int,
    backend: ScriptedBackend,
    client: Callable[..., RawClient],
) -> None:
    """Whatever the framing of requests and answers, each request gets exactly one
    well-framed response, in order, and it is its own (no cross-talk), with no hang."""
    backend.scripts["fz"] = _fuzz_answer
    errors = len(backend.errors)
    payload = b"".join(raw for _, raw, _, _ in pipeline)
    with client() as one:
        one.send(payload[:split])  # the bytes arrive in two pieces, cut anywhere
        one.send(payload[split:])
        for method, _, target, kind in pipeline:
            answer = one.read_response(method)
            assert 103 not in answer.interim or kind == "hints"
            if kind == "no-content":
                assert (answer.status, answer.body) == (204, b"")
            elif kind == "not-modified":
                assert (answer.status, answer.body) == (304, b"")
            else:
                assert answer.status == 200
                expected = b"" if method == "HEAD" else f"{method} {target}".encode()
                assert answer.body == expected
        one.send(request("GET", "/s/none/last"))
        assert one.read_response().body == b"GET /s/none/last"
    assert backend.errors[errors:] == []


@FUZZ
@given(garbage=st.binary(min_size=1, max_size=300))
def test_arbitrary_bytes_get_a_framed_answer_or_a_close_and_never_a_hang(
    garbage: bytes, client: Callable[..., RawClient]
) -> None:
    with client() as one:
        one.send(garbage + b"\r\n\r\n")
        try:
            answer = one.read_response()
        except ClosedWithoutResponse:
            pass  # a close is fine (a refusal closes); a hang or a half answer is not
        else:
            assert 100 <= answer.status < 600
    with client() as after:  # the facade is still there for everyone else
        after.send(request("GET", "/s/none/alive"))
        assert after.read_response().body == b"GET /s/none/alive"


def test_a_deny_rule_answers_its_fixed_response_and_forwards_nothing(
    backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    before = len(backend.seen)
    with client() as one:
        one.send(request("POST", "/internal/stock", body=b"x") + request("HEAD", "/internal/a"))
        denied = one.read_response("POST")
        assert (denied.status, denied.body) == (404, b'{"error": "no"}')
        assert denied.header("content-type") == ["application/json"]
        assert denied.header("x-strangler-route") == ["internal"]
        head = one.read_response("HEAD")
        assert (head.status, head.body) == (404, b"")
    assert len(backend.seen) == before


# -- the reference: the same corpus through nginx --------------------------------------

NGINX = "/usr/sbin/nginx"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_header_buffer_size 16k;
    large_client_header_buffers 4 16k;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""
# (name, request bytes, the methods of the answers expected)
CORPUS: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("103 then 200", request("GET", "/s/hints/a"), ("GET",)),
    ("100 and 102 then 200", request("GET", "/s/interim/a"), ("GET",)),
    ("close-delimited body", request("GET", "/s/eof/a"), ("GET",)),
    ("close-delimited body, HTTP/1.0", request("GET", "/s/eof/a", http10=True), ("GET",)),
    ("chunked body, HTTP/1.0", request("GET", "/s/chunked/a", http10=True), ("GET",)),
    ("HEAD, backend says close", request("HEAD", "/s/headclose/a"), ("HEAD",)),
    ("101 from the backend", request("GET", "/s/switch/a"), ("GET",)),
    ("Upgrade: websocket", request("GET", "/ws", "Connection: Upgrade", "Upgrade: websocket"),
     ("GET",)),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", ("GET",)),
    ("trailers", b"POST /s/none/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4\r\nbody\r\n0\r\nX-Injected: yes\r\n\r\n", ("POST",)),
    ("request line of 17 KB", request("GET", "/" + "a" * 17_000), ("GET",)),
    ("a header of 17 KB", request("GET", "/x", "X-Big: " + "b" * 17_000), ("GET",)),
    ("101 headers", request("GET", "/x", *[f"X-N{i}: n" for i in range(101)]), ("GET",)),
    ("three pipelined", b"".join(request("GET", f"/s/none/{i}") for i in range(3)),
     ("GET", "GET", "GET")),
    ("malformed", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", ("GET",)),
]  # fmt: skip


def _outcome(port: int, raw: bytes, methods: tuple[str, ...]) -> list[str]:
    """What a client sees: each answer's status and body, then whether the connection
    closed; a framing error or a hang is an outcome too."""
    seen: list[str] = []
    with RawClient(port, timeout=2) as one:
        one.send(raw)
        http10 = b"HTTP/1.0" in raw.split(b"\r\n", 1)[0]
        for method in methods:
            try:
                answer = one.read_response(method, http10=http10)
            except ClosedWithoutResponse:
                seen.append("closed")
                return seen
            except ProtocolViolation as exc:
                seen.append(f"bad framing: {str(exc)[:60]}")
                return seen
            except AssertionError:
                seen.append("hang")
                return seen
            # an error page is each proxy's own: only its status is compared
            shown = "" if answer.status >= 400 else f" {answer.body[:40]!r}"
            seen.append(f"{answer.status}{shown}")
        one.sock.settimeout(0.3)  # a close comes at once, or the connection stays open
        seen.append("closed" if one.closed() else "open")
    return seen


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
def test_the_corpus_against_nginx_lists_where_they_differ(
    backend: ScriptedBackend,
    facade: InProcessFacade,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """nginx as the reference proxy: every case of the corpus through both; the
    disagreements are listed (in results/conformance-vs-nginx.txt), not failed — nginx
    is not ALB, and where the facade follows ALB they differ on purpose."""
    backend.scripts.update(
        hints=lambda seen, _: (
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
            + response_bytes("200 OK", named(seen))
        ),
        interim=lambda seen, _: (
            b"HTTP/1.1 100 Continue\r\n\r\n" + response_bytes("200 OK", named(seen))
        ),
        eof=lambda seen, _: CloseAfter(b"HTTP/1.1 200 OK\r\n\r\n" + named(seen)),
        chunked=lambda seen, _: (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ),
        headclose=lambda seen, _: (
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n"
        ),
        switch=lambda seen, _: CloseAfter(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n"
        ),
    )
    port = free_port()
    conf = tmp_path / "nginx.conf"
    backend_port = backend.sock.getsockname()[1]
    conf.write_text(NGINX_CONF.format(dir=tmp_path, backend=backend_port, port=port))
    nginx = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert nginx.poll() is None, (tmp_path / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        lines = []
        for name, raw, methods in CORPUS:
            ours = _outcome(facade.port, raw, methods)
            theirs = _outcome(port, raw, methods)
            assert "hang" not in ours, name
            assert not any(o.startswith("bad") for o in ours), (name, ours)
            if ours != theirs:
                lines.append(f"{name}:\n  strangler: {ours}\n  nginx:     {theirs}")
    finally:
        nginx.terminate()
        nginx.wait(10)
    report = "\n".join(lines) or "no disagreements"
    out = Path(__file__).resolve().parents[2] / "results"
    out.mkdir(exist_ok=True)
    (out / "conformance-vs-nginx.txt").write_text(report + "\n")
    with capsys.disabled():
        print(f"\nthe corpus against nginx, {len(lines)} of {len(CORPUS)} differ:\n{report}")


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /s/none/a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /s/none/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /s/none/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"GET /s/none/d HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n",
        b"GET /s/none/e HTTP/1.1\r\nHost: x\r\n Folded: yes\r\n\r\n",
    ],
    ids=["length-and-chunked", "two-lengths", "bare-lf", "folded-header"],
)
def test_request_smuggling_shapes_get_400_and_nothing_is_forwarded(
    raw: bytes, backend: ScriptedBackend, client: Callable[..., RawClient]
) -> None:
    before = len(backend.seen)
    with client() as one:
        one.send(raw)
        assert one.read_response("POST").status == 400
        assert one.closed()
    assert len(backend.seen) == before
