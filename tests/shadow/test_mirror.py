"""The mirror under a real facade (``strangler serve`` on port 0) with real backends:
copies compared with noise learned, writes never mirrored unasked, a bad shadow changes
nothing for clients, caps drop and count, nothing secret reaches the store."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.shadow import store
from tests.facade.proxy import Proxy, proxy
from tests.shadow.backends import Backend, backend, order

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Poll a condition (the store, the metrics) until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        time.sleep(0.02)


@contextmanager
def shadowed(
    tmp: Path, shadow: str, *, candidate_shape: Any = order, route_extra: str = ""
) -> Iterator[tuple[Proxy, Backend, Backend, Path]]:
    with backend("monolith") as primary, backend("candidate", candidate_shape) as candidate:
        routing = tmp / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  candidate: {{kind: url, url: "{candidate.url}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders", "/api/orders/*"]}}
    targets: {{monolith: 100}}
{route_extra}    shadow: {shadow}
""")
        with proxy(routing) as running:
            yield running, primary, candidate, tmp / "var" / "shadow.sqlite3"


def shadow_series(running: Proxy) -> dict[str, float]:
    text = httpx.get(f"{running.admin_url}/__facade/metrics", timeout=5).text
    found = re.findall(
        r'strangler_facade_shadow_total\{result="(\w+)",route="orders"\} (\S+)', text
    )
    return {result: float(value) for result, value in found}


def test_a_stamped_time_is_noise_and_a_different_total_is_reported_with_its_example(
    tmp_path: Path,
) -> None:
    def candidate_shape(method: str, path: str) -> dict[str, Any]:
        answer = order(method, path)
        if answer["id"] % 4 == 0:  # a rounding bug in a quarter of the orders
            answer["total"] = f"{answer['id'] * 10}.01"
        return answer

    shadow = "{to: candidate, noise: 100}"
    with shadowed(tmp_path, shadow, candidate_shape=candidate_shape) as (running, *_, path):
        with running.client() as client:
            for number in range(40):
                answer = client.get(
                    f"/api/orders/{number}/", headers={"accept": "application/json"}
                )
                assert answer.status_code == 200
                assert answer.json()["total"] == f"{number * 10}.00"  # the primary's, always
        wait_until(lambda: store.summary(path, "orders").compared == 40, what="40 compared")
        assert shadow_series(running) == {"differing": 40.0, "noise": 40.0}
    report = store.report(path, "orders")
    (endpoint,) = report.endpoints
    assert endpoint.endpoint == "GET /api/orders/{id}/"
    fields = {f.field: f for f in endpoint.fields}
    assert set(fields) == {"$.total", "$.updated_at"}
    assert not fields["$.updated_at"].real  # differs between two primary answers just as much
    assert fields["$.updated_at"].rates.noise_rate == 1.0
    total = fields["$.total"]
    assert total.real
    assert total.rates.rate == 0.25
    assert total.rates.noise_rate == 0.0
    example = total.examples[0]
    assert re.fullmatch(r"GET /api/orders/\d+/", example.request)
    assert ("accept", "application/json") in example.headers
    number = int(example.request.split("/")[3])
    assert (example.primary, example.shadow) == (f'"{number * 10}.00"', f'"{number * 10}.01"')
    assert report.summary == store.ShadowSummary(40, 10, 0.25, 0, 0)


def test_declared_normalisers_and_ignores_make_known_differences_equal(tmp_path: Path) -> None:
    def candidate_shape(method: str, path: str) -> dict[str, Any]:
        answer = order(method, path)
        answer["total"] = f"{float(answer['total']) + 0.004:.3f}"
        answer["request_id"] = "different"
        return answer

    shadow = (
        "{to: candidate, noise: 0, compare: {ignore: [$..request_id], "
        "normalize: {$.updated_at: timestamp, $.total: {number: 0.005}}}}"
    )
    with shadowed(tmp_path, shadow, candidate_shape=candidate_shape) as (running, *_, path):
        with running.client() as client:
            for number in range(5):
                assert client.get(f"/api/orders/{number}/").status_code == 200
        wait_until(lambda: store.summary(path, "orders").compared == 5)
    report = store.report(path, "orders")
    assert report.matched == 5
    assert report.endpoints[0].fields == []


def test_a_write_is_never_mirrored_without_the_opt_in(tmp_path: Path) -> None:
    with shadowed(tmp_path, "{to: candidate, noise: 100}") as (running, primary, candidate, path):
        with running.client() as client:
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                assert client.request(method, "/api/orders/1/", json={}).status_code == 200
            assert client.get("/api/orders/2/").status_code == 200
        # the read's copy and its noise copy arrive; the writes' never were sent
        candidate.wait_for(lambda got: any(r[:2] == ("GET", "/api/orders/2/") for r in got))
        primary.wait_for(lambda got: sum(r[0] == "GET" for r in got) == 2)
        wait_until(lambda: store.summary(path, "orders").compared == 1)
        assert [r[0] for r in candidate.received] == ["GET"]
        assert [r[0] for r in primary.received] == ["POST", "PUT", "PATCH", "DELETE", "GET", "GET"]


def test_an_opted_in_write_is_marked_and_never_sent_twice_to_the_primary(tmp_path: Path) -> None:
    shadow = "{to: candidate, noise: 100, writes: true, methods: [GET, POST]}"
    with shadowed(tmp_path, shadow) as (running, primary, candidate, path):
        with running.client() as client:
            assert client.post("/api/orders", json={"sku": 1}).status_code == 200
        candidate.wait_for(lambda got: len(got) == 1)
        wait_until(lambda: store.summary(path, "orders").compared == 1)
        ((method, _, headers),) = candidate.received
        assert (method, headers["x-strangler-shadow"]) == ("POST", "write")
        assert [r[0] for r in primary.received] == ["POST"]  # no noise copy of a write
        assert "x-strangler-shadow" not in primary.received[0][2]


@pytest.mark.parametrize("mode", ["hang", "fail", "reset"])
def test_a_shadow_that_hangs_or_fails_changes_nothing_for_clients(
    tmp_path: Path, mode: str
) -> None:
    shadow = "{to: candidate, noise: 0, timeout: 2}"
    with shadowed(tmp_path, shadow) as (running, _primary, candidate, path):
        candidate.mode = mode
        with running.client() as client:
            for number in range(6):
                started = time.perf_counter()
                answer = client.get(f"/api/orders/{number}/")
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200
                assert answer.json()["id"] == number
                assert answer.headers["x-strangler-backend"] == "monolith"
                assert elapsed < 1.0  # never waits for the shadow's 2 s timeout
        if mode == "fail":  # an answer, compared: its status is the difference
            wait_until(lambda: store.summary(path, "orders").differing == 6, what="6 differing")
            fields = store.report(path, "orders").endpoints[0].fields
            assert "status" in [f.field for f in fields if f.real]
            assert shadow_series(running) == {"differing": 6.0}
        else:
            wait_until(lambda: store.summary(path, "orders").errors == 6, what="6 errors")
            assert store.summary(path, "orders").compared == 0
            assert shadow_series(running) == {"error": 6.0}
        candidate.release.set()


def test_caps_drop_copies_and_count_them(tmp_path: Path) -> None:
    shadow = "{to: candidate, noise: 0, max_concurrent: 2, timeout: 30, max_body_bytes: 300}"
    with shadowed(tmp_path, shadow) as (running, _primary, candidate, path):
        candidate.mode = "hang"
        with running.client() as client:
            for number in range(10):
                assert client.get(f"/api/orders/{number}/").status_code == 200
            candidate.wait_for(lambda got: len(got) == 2)
            big = client.post("/api/orders/1/", content=b"x" * 301)  # a body over the cap
            assert big.status_code == 200
            # 2 in flight, 2 waiting for a slot (a room as large as the cap), 6 dropped
            wait_until(lambda: store.summary(path, "orders").dropped == 6, what="6 dropped")
            candidate.release.set()
            wait_until(lambda: store.summary(path, "orders").compared == 4, what="4 compared")
            assert client.get("/api/orders/5/").status_code == 200
            wait_until(lambda: store.summary(path, "orders").compared == 5)
        got = candidate.received
        assert sorted(r[1] for r in got) == sorted(f"/api/orders/{n}/" for n in (0, 1, 2, 3, 5))
        assert store.report(path, "orders").counters == {"dropped:concurrency": 6}
        assert shadow_series(running)["dropped"] == 6.0


def test_a_primary_answer_over_the_body_cap_is_dropped_not_compared(tmp_path: Path) -> None:
    def large(method: str, path: str) -> dict[str, Any]:
        return {**order(method, path), "padding": "x" * 400}

    with backend("monolith", large) as primary, backend("candidate", large) as candidate:
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  candidate: {{kind: url, url: "{candidate.url}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{monolith: 100}}
    shadow: {{to: candidate, noise: 0, max_body_bytes: 300}}
""")
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            answer = client.get("/api/orders/3/")
            assert len(answer.json()["padding"]) == 400  # the client gets it all
            wait_until(lambda: store.summary(path, "orders").dropped == 1)
        assert store.report(path, "orders").counters == {"dropped:body": 1}


def test_no_token_or_email_reaches_the_store(tmp_path: Path) -> None:
    def primary_shape(method: str, path: str) -> dict[str, Any]:
        return {"customer": {"email": "ada@example.com", "name": "Ada"}, "note": "ok"}

    def candidate_shape(method: str, path: str) -> dict[str, Any]:
        return {
            "customer": {"email": "ADA@example.com", "name": "Ada L."},
            "note": "mail grace@example.org, token Bearer sk_live_0123456789abcdef",
            "session_token": "tok_987654321",
        }

    secrets = [
        "s3cr3t-bearer-value", "cookie-value-42", "qs-token-777", "ada@example.com",
        "ADA@example.com", "grace@example.org", "sk_live_0123456789abcdef", "tok_987654321",
        "zed@example.net", "api-key-555",
    ]  # fmt: skip
    with (
        backend("monolith", primary_shape) as primary,
        backend("candidate", candidate_shape) as candidate,
    ):
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  candidate: {{kind: url, url: "{candidate.url}"}}
routes:
  - name: customers
    match: {{paths: ["/api/customers/*"]}}
    targets: {{monolith: 100}}
    shadow: {{to: candidate, noise: 0, redact: [note]}}
""")
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            answer = client.get(
                "/api/customers/zed@example.net/?token=qs-token-777&page=2",
                headers={
                    "authorization": "Bearer s3cr3t-bearer-value",
                    "cookie": "sessionid=cookie-value-42",
                    "x-api-key": "api-key-555",
                    "accept": "application/json",
                },
            )
            assert answer.status_code == 200
            wait_until(lambda: store.summary(path, "customers").compared == 1)
    stored = b"".join(p.read_bytes() for p in path.parent.glob("shadow.sqlite3*"))
    for secret in secrets:
        assert secret.encode() not in stored, secret
    report = store.report(path, "customers")
    fields = {f.field: f for f in report.endpoints[0].fields}
    assert set(fields) == {"$.customer.email", "$.customer.name", "$.note", "$.session_token"}
    example = fields["$.customer.name"].examples[0]
    assert example.request == "GET /api/customers/[redacted]/?token=[redacted]&page=2"
    assert ("accept", "application/json") in example.headers
    assert not {"authorization", "cookie", "x-api-key"} & {name for name, _ in example.headers}
    assert (example.primary, example.shadow) == ('"Ada"', '"Ada L."')  # not personal: kept
    assert fields["$.customer.email"].examples[0].shadow == '"[redacted]"'


def test_lambda_copies_run_in_environments_of_their_own(tmp_path: Path) -> None:
    """With one environment per handler and no queue, a copy in the primary's
    environment would throttle the next primary request (503): none is."""
    with backend("candidate") as candidate:
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  fn: {{kind: lambda, handler: "tests.facade.lambda_handlers:slow"}}
  candidate: {{kind: monolith, url: "{candidate.url}"}}
  copy: {{kind: lambda, handler: "tests.facade.lambda_handlers:slow"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{fn: 100}}
    shadow: {{to: copy, noise: 0, timeout: 20}}
default: candidate
""")
        env = {
            "PYTHONPATH": str(ROOT),
            "STRANGLER_LAMBDA_CONCURRENCY": "1",
            "STRANGLER_LAMBDA_QUEUE": "0",
        }
        path = tmp_path / "var" / "shadow.sqlite3"
        with (
            proxy(routing, env=env) as running,
            httpx.Client(base_url=running.url, timeout=30) as client,
        ):
            for _ in range(2):
                assert client.get("/api/orders/1/").status_code == 200
            summary = wait_until(
                lambda: (s := store.summary(path, "orders")).compared + s.dropped == 2 and s,
                timeout=30,
            )
            assert summary.errors == 0


def test_with_several_workers_the_series_are_summed_and_the_store_is_shared(
    tmp_path: Path,
) -> None:
    with backend("monolith") as primary, backend("candidate") as candidate:
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  candidate: {{kind: url, url: "{candidate.url}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{monolith: 100}}
    shadow: {{to: candidate, noise: 0}}
""")
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing, workers=2) as running:
            for number in range(30):
                with running.client() as client:  # a new connection: any worker may take it
                    assert client.get(f"/api/orders/{number}/").status_code == 200
            wait_until(lambda: store.summary(path, "orders").compared == 30)
            wait_until(lambda: sum(shadow_series(running).values()) == 30, what="30 in series")


def test_a_shadow_nobody_listens_for_changes_nothing_and_counts_errors(tmp_path: Path) -> None:
    from tests.facade.conftest import free_port

    with backend("monolith") as primary:
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  candidate: {{kind: url, url: "http://127.0.0.1:{free_port()}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{monolith: 100}}
    shadow: {{to: candidate, noise: 0}}
""")
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            for number in range(3):
                assert client.get(f"/api/orders/{number}/").json()["id"] == number
            wait_until(lambda: store.summary(path, "orders").errors == 3)
        assert store.report(path, "orders").counters == {"error:shadow_connect": 3}
