"""Lambda backends behind the proxy: the ALB target event in, the handler's answer out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from facade.proxy.lambda_target import alb_event, http_response
from facade.routing.model import Backend, BackendKind
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

EVENTS = Path(__file__).parent / "events"
ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.facade.lambda_handlers"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/echo/0123456789abcdef"


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("lambda")
    with upstream("monolith") as mono:
        routing = tmp / "routing.yaml"
        routing.write_text(f"""\
version: 1
facade:
  timeouts: {{lambda: 5}}
backends:
  monolith: {{kind: monolith, url: "{mono.url}"}}
  echo:
    kind: lambda
    handler: {HANDLERS}:echo
    aws:
      function: orders-echo
      target_group_arn: "{TG_ARN}"
  echo-multi: {{kind: lambda, handler: "{HANDLERS}:echo", multi_value_headers: true}}
  multi: {{kind: lambda, handler: "{HANDLERS}:multi", multi_value_headers: true}}
  binary: {{kind: lambda, handler: "{HANDLERS}:binary"}}
  slow: {{kind: lambda, handler: "{HANDLERS}:slow"}}
  boom: {{kind: lambda, handler: "{HANDLERS}:boom"}}
  bad: {{kind: lambda, handler: "{HANDLERS}:not_a_response"}}
routes:
  - {{name: echo, match: {{paths: ["/echo/*"]}}, targets: echo}}
  - {{name: echo-multi, match: {{paths: ["/multi-echo/*"]}}, targets: echo-multi}}
  - {{name: multi, match: {{paths: ["/multi/*"]}}, targets: multi}}
  - {{name: binary, match: {{paths: ["/binary/*"]}}, targets: binary}}
  - {{name: slow, match: {{paths: ["/slow/*"]}}, targets: slow}}
  - {{name: boom, match: {{paths: ["/boom/*"]}}, targets: boom}}
  - {{name: bad, match: {{paths: ["/bad/*"]}}, targets: bad}}
default: monolith
""")
        with proxy(routing, env={"PYTHONPATH": str(ROOT)}) as running:
            yield running


def fixture(name: str) -> dict[str, object]:
    return dict(json.loads((EVENTS / name).read_text()))


def test_the_event_has_the_shape_of_a_real_alb_event(facade: Proxy) -> None:
    with facade.client() as client:
        response = client.get(
            "/echo/12/?expand=lines&q=caf%C3%A9&q=last",
            headers={"Cookie": "s=1", "X-Strangler-Backend-Override": "boom"},
        )
    assert response.status_code == 200
    assert response.headers["x-handler"] == "echo"
    assert response.headers["x-strangler-backend"] == "echo"
    seen = response.json()
    assert seen["keys"] == sorted(fixture("alb_event.json"))
    assert seen["method"] == "GET"
    assert seen["path"] == "/echo/12/"
    # ALB passes query values as received (not URL-decoded); the last repeated name wins
    assert seen["query"] == {"expand": "lines", "q": "last"}
    assert seen["raw_headers"]["cookie"] == "s=1"
    assert "x-strangler-backend-override" not in seen["raw_headers"]  # override is off
    assert seen["raw_headers"]["x-forwarded-proto"] == "http"
    assert seen["raw_headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert all(name == name.lower() for name in seen["raw_headers"])
    assert seen["target_group"].endswith(":targetgroup/echo/0123456789abcdef")
    assert seen["function"] == "orders-echo"
    assert 0 < seen["remaining_ms"] <= 5000


def test_multi_value_target_groups_get_multi_value_fields(facade: Proxy) -> None:
    with facade.client() as client:
        response = client.post(
            "/multi-echo/?tag=a&tag=b",
            content=b'{"lines": []}',
            headers=[
                ("content-type", "application/json"),
                ("x-custom", "one"),
                ("x-custom", "two"),
            ],
        )
    assert response.status_code == 201
    seen = response.json()
    assert seen["keys"] == sorted(fixture("alb_multi_value_event.json"))
    assert seen["multi_query"] == {"tag": ["a", "b"]}
    assert seen["multi_headers"]["x-custom"] == ["one", "two"]
    assert seen["body"] == '{"lines": []}'
    assert seen["is_base64"] is False


def test_multi_value_response_headers(facade: Proxy) -> None:
    with facade.client() as client:
        response = client.get("/multi/x", headers=[("x-custom", "1"), ("x-custom", "2")])
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.json() == {"custom": ["1", "2"]}


def test_binary_bodies_travel_base64_both_ways(facade: Proxy) -> None:
    payload = bytes(range(256)) * 4
    with facade.client() as client:
        response = client.post(
            "/binary/x", content=payload, headers={"content-type": "application/octet-stream"}
        )
        assert response.content == bytes(reversed(payload))
        assert response.headers["content-type"] == "application/octet-stream"
        assert client.get("/binary/x").content == bytes(range(256))


def test_handler_failures_are_502_like_alb(facade: Proxy) -> None:
    with facade.client() as client:
        boom = client.get("/boom/x")
        bad = client.get("/bad/x")
    assert boom.status_code == 502
    assert boom.json()["error"]["code"] == "lambda_error"
    assert "RuntimeError" in boom.json()["error"]["message"]
    assert bad.status_code == 502


def test_a_slow_handler_does_not_block_other_requests(facade: Proxy) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool, facade.client() as fast_client:
        slow = pool.submit(httpx.get, f"{facade.url}/slow/x", timeout=10)
        fast_times = []
        for _ in range(5):
            started = time.monotonic()
            assert fast_client.get("/shop/").headers["x-strangler-backend"] == "monolith"
            fast_times.append(time.monotonic() - started)
        slow_response = slow.result()
        assert not slow.running()
    assert slow_response.text == "finally"
    assert max(fast_times) < 0.5


def test_event_translation_matches_the_documented_fixture_shapes() -> None:
    single = Backend("orders", BackendKind.LAMBDA, handler="m:f")
    event = alb_event(single, "GET", "/api/orders/12/", b"expand=lines", [(b"Host", b"x")], b"")
    assert set(event) == set(fixture("alb_event.json"))
    multi_backend = Backend("orders", BackendKind.LAMBDA, handler="m:f", multi_value_headers=True)
    event = alb_event(
        multi_backend, "POST", "/api/orders/", b"tag=a&tag=b", [(b"Host", b"x")], b"{}"
    )
    assert set(event) == set(fixture("alb_multi_value_event.json"))
    status, headers, body = http_response(
        {"statusCode": 204, "headers": {"X-A": "1", "Content-Length": "99"}}, multi_value=False
    )
    assert (status, headers, body) == (204, [(b"X-A", b"1")], b"")


@pytest.fixture(scope="module")
def one_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A Lambda with one execution environment, one queue place and a 2 s timeout."""
    tmp = tmp_path_factory.mktemp("environments")
    with upstream("monolith") as mono:
        routing = tmp / "routing.yaml"
        routing.write_text(f"""\
version: 1
facade:
  timeouts: {{lambda: 2}}
  max_body_bytes: 4000000
backends:
  monolith: {{kind: monolith, url: "{mono.url}"}}
  env: {{kind: lambda, handler: "{HANDLERS}:environment"}}
routes:
  - {{name: env, match: {{paths: ["/env/*"]}}, targets: env}}
default: monolith
""")
        env = {
            "PYTHONPATH": str(ROOT),
            "STRANGLER_LAMBDA_CONCURRENCY": "1",
            "STRANGLER_LAMBDA_QUEUE": "1",
        }
        with proxy(routing, env=env) as running:
            yield running


def test_a_timed_out_environment_is_killed_and_nothing_queued_behind_it_runs(
    one_environment: Proxy, tmp_path: Path
) -> None:
    """Defect 9: a timed-out invocation kept running, and those queued behind it ran
    after their clients were told 504 — a POST taking effect after it "failed"."""
    marker, started = tmp_path / "touched", tmp_path / "started"
    with ThreadPoolExecutor(2) as pool, one_environment.client() as client:
        before = client.get("/env/pid").json()["pid"]
        stuck = pool.submit(client.post, "/env/sleep/30", content=str(started).encode())
        deadline = time.monotonic() + 10
        while not started.exists():  # the environment is busy before the next one queues
            assert time.monotonic() < deadline, "the sleeping invocation never started"
            time.sleep(0.01)
        queued = pool.submit(client.post, "/env/touch", content=str(marker).encode())
        assert stuck.result().status_code == 504
        assert queued.result().status_code == 504
        after = client.get("/env/pid").json()["pid"]  # runs after anything still queued
    assert after != before  # the stuck environment was replaced
    assert not marker.exists()


def test_a_full_queue_is_throttled_with_503(one_environment: Proxy) -> None:
    with ThreadPoolExecutor(4) as pool, one_environment.client() as client:
        answers = [pool.submit(client.get, "/env/sleep/1") for _ in range(4)]
        statuses = sorted(a.result().status_code for a in answers)
    assert statuses.count(503) >= 1
    assert statuses.count(200) >= 1


def test_albs_1_mb_limits_for_lambda_targets(one_environment: Proxy) -> None:
    with one_environment.client() as client:
        too_big = client.post("/env/pid", content=b"x" * (1024 * 1024 + 1))
        assert too_big.status_code == 413
        assert client.get("/env/big").status_code == 502
        assert client.post("/env/pid", content=b"x" * 1000).status_code == 200
