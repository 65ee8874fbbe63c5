"""The catalog service as ECS runs it: its own database, a health check for the target
group, and a graceful stop on SIGTERM."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import MonolithServer, Served, catalog_server, scratch_database

pytestmark = pytest.mark.postgresql


@pytest.fixture
def catalog(pg_monolith: MonolithServer) -> Iterator[Served]:
    with (
        scratch_database("strangler_cat") as url,
        catalog_server(url, pg_monolith.database_url) as server,
    ):
        yield server


def _accept_backlog(port: int) -> int:
    """Connections waiting in the listening socket's accept queue (rx_queue in /proc)."""
    waiting = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # LISTEN
                waiting += int(fields[4].split(":")[1], 16)
    return waiting


def test_health_check_answers_for_the_target_group(catalog: Served) -> None:
    response = httpx.get(f"{catalog.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert httpx.get(f"{catalog.base_url}/admin/").status_code == 404
    assert httpx.get(f"{catalog.base_url}/api/orders/").json()["error"]["code"] == "not_found"


def test_the_catalog_matches_the_monolith_it_was_imported_from(
    catalog: Served, pg_monolith: MonolithServer
) -> None:
    for path in (
        "/api/catalog/categories/?page_size=100",
        "/api/catalog/products/?ordering=-price&page_size=7&page=2",
        "/api/catalog/products/?search=steel",
        "/api/catalog/products/999999/",
    ):
        ours = httpx.get(catalog.base_url + path)
        theirs = httpx.get(pg_monolith.base_url + path)
        assert ours.status_code == theirs.status_code, path
        assert _relative(ours.json(), catalog.base_url) == _relative(
            theirs.json(), pg_monolith.base_url
        ), path


def _relative(body: object, base: str) -> object:
    text = httpx.Response(200, json=body).text.replace(base.replace("http://", ""), "HOST")
    return httpx.Response(200, text=text).json()


def test_sigterm_finishes_the_request_in_flight_then_exits(catalog: Served) -> None:
    port = int(catalog.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /api/catalog/products/?page_size=3 HTTP/1.1\r\nHost: catalog\r\n")
        deadline = time.monotonic() + 10
        while _accept_backlog(port):  # a worker has taken the connection: it is in flight
            assert time.monotonic() < deadline
            time.sleep(0.01)
        catalog.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not any("Handling signal: term" in line for line in catalog.log):
            assert time.monotonic() < deadline, "".join(catalog.log)
            time.sleep(0.01)
        sock.sendall(b"Connection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert b'"results"' in received
    assert catalog.process.wait(timeout=30) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
