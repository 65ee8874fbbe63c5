"""Metric providers: the facade's exposition read per arm, a Prometheus HTTP API queried
over real HTTP, and every way they fail is a ProviderError (never a number)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from facade.proxy.metrics import Metrics
from facade.rollout.providers import (
    FacadeProvider,
    PrometheusProvider,
    ProviderError,
    parse_exposition,
)
from facade.rollout.samples import ArmCounts


def exposition() -> str:
    metrics = Metrics()
    for _ in range(90):
        metrics.observe("orders", "monolith", "weight", 200, 0.004)
    for _ in range(8):
        metrics.observe("orders", "orders", "weight", 200, 0.03)
    metrics.observe("orders", "orders", "sticky", 503, 0.2)
    metrics.observe("orders", "orders", "weight", 502, 2.0)
    metrics.observe("catalog", "orders", "weight", 500, 0.01)  # another route: not counted
    return metrics.render()[0].decode()


def test_the_facade_exposition_gives_each_arms_requests_errors_and_histogram() -> None:
    baseline, canary = parse_exposition(exposition(), "orders", ("monolith", "orders"))
    assert (baseline.requests, baseline.errors) == (90, 0)
    assert (canary.requests, canary.errors) == (10, 2)
    assert canary.bounds[-1] == math.inf
    assert canary.buckets[-1] == 10
    assert canary.buckets[canary.bounds.index(0.05)] == 8  # the 30 ms answers
    assert baseline.buckets[baseline.bounds.index(0.005)] == 90


def test_increments_restart_from_zero_when_a_facade_restarted() -> None:
    earlier = ArmCounts(100, 5, (1.0, math.inf), (90, 100))
    later = ArmCounts(130, 6, (1.0, math.inf), (115, 130))
    assert later.minus(earlier) == ArmCounts(30, 1, (1.0, math.inf), (25, 30))
    restarted = ArmCounts(12, 0, (1.0, math.inf), (12, 12))
    assert restarted.minus(earlier) == restarted


def test_an_unreachable_facade_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match=r"127\.0\.0\.1:9"):
        FacadeProvider("http://127.0.0.1:9", timeout=2).read("orders", "monolith", "orders")


class _Prometheus(BaseHTTPRequestHandler):
    answers: dict[str, object] = {}
    status = 200

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)["query"][0]
        type(self).seen.append(query)  # type: ignore[attr-defined]
        key = "buckets" if "_bucket" in query else "responses"
        body = json.dumps(self.answers.get(key, {})).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def prometheus(answers: dict[str, object], status: int = 200) -> Iterator[list[str]]:
    handler = type("Handler", (_Prometheus,), {"answers": answers, "status": status, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
        yield handler  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()


def vector(*rows: tuple[dict[str, str], float]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1700000000.0, str(v)]} for m, v in rows],
        },
    }


def test_prometheus_sums_across_facades_per_arm() -> None:
    answers: dict[str, object] = {
        "responses": vector(
            ({"backend": "monolith", "status_class": "2xx"}, 900),
            ({"backend": "monolith", "status_class": "5xx"}, 3),
            ({"backend": "orders", "status_class": "2xx"}, 95),
            ({"backend": "orders", "status_class": "5xx"}, 5),
        ),
        "buckets": vector(
            ({"backend": "orders", "le": "0.1"}, 90),
            ({"backend": "orders", "le": "+Inf"}, 100),
        ),
    }
    with prometheus(answers) as server:
        provider = PrometheusProvider(server.url)  # type: ignore[attr-defined]
        baseline, canary = provider.read("orders", "monolith", "orders")
        seen = server.seen  # type: ignore[attr-defined]
    assert (baseline.requests, baseline.errors) == (903, 3)
    assert (canary.requests, canary.errors) == (100, 5)
    assert canary.bounds == (0.1, math.inf)
    assert canary.buckets == (90, 100)
    assert any('route="orders"' in q and "sum by (backend, status_class)" in q for q in seen)


@pytest.mark.parametrize(
    ("answers", "status", "says"),
    [
        ({"responses": {"status": "error", "error": "parse error"}}, 200, "parse error"),
        ({"responses": {"status": "success", "data": {"resultType": "matrix"}}}, 200, "vector"),
        ({"responses": {"status": "success"}}, 200, "malformed"),
        ({}, 503, "HTTP 503"),
    ],
)
def test_every_prometheus_failure_is_a_provider_error(
    answers: dict[str, object], status: int, says: str
) -> None:
    with prometheus(answers, status) as server, pytest.raises(ProviderError, match=says):
        PrometheusProvider(server.url).read("orders", "monolith", "orders")  # type: ignore[attr-defined]
