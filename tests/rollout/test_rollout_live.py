"""``strangler rollout start`` against a real facade with real backends and live traffic:
a healthy canary is promoted, a faulty one rolled back, a killed controller restarted
finishes without repeating a step."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from facade.routing.loader import load_table
from tests.facade.conftest import LineReader
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream
from tests.rollout import live_kit

ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "%(monolith)s"}
  orders: {kind: ecs, url: "%(orders)s"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100, orders: 0}
    rollout:
      to: orders
      steps: [10, 50, 100]
      step: {min_time: 3, min_sample: 40, max_wait: 60}
      bake: 2
      interval: 1
      on_inconclusive: rollback
      analysis: {errors: {max_increase: 5}, latency: null}
default: monolith
"""


def traffic(url: str) -> AbstractContextManager[list[int]]:
    """Requests to the route as fast as answered, each from a new client (no cookie), on
    two threads until the block ends; yields the statuses seen."""
    return live_kit.traffic(url, lambda answer: 0 if answer is None else answer.status_code)


def rollout(facade: Proxy, *args: str) -> subprocess.Popen[str]:
    return live_kit.command(facade, "rollout", *args)


def status(facade: Proxy) -> dict[str, object]:
    return live_kit.status(facade, "rollout")


def canary_share(routing: Path) -> float:
    return load_table(routing).route("orders").share_of("orders") / 10


def weights(routing: Path) -> list[float]:
    lines = (routing.parent / "audit.jsonl").read_text().splitlines()
    return [e["share"] for e in map(json.loads, lines) if e.get("action") == "rollout.weight"]


@pytest.fixture
def setting(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Proxy]:
    fail_rate = float(getattr(request, "param", 0.0))
    with upstream("monolith") as old, upstream("orders", fail_rate=fail_rate) as new:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % {"monolith": old.url, "orders": new.url})
        with proxy(routing) as facade:
            yield facade


def test_a_healthy_canary_is_promoted_under_live_traffic(setting: Proxy) -> None:
    with traffic(setting.url) as statuses:
        process = rollout(setting, "start", "orders")
        output = LineReader(process)
        assert process.wait(timeout=120) == 0, output.text
    assert canary_share(setting.routing) == 100
    assert weights(setting.routing) == [10, 50, 100]
    assert statuses
    assert set(statuses) == {200}
    view = status(setting)
    assert view["state"] == "promoted"
    assert view["step"] == 3
    assert view["configured"] == {"orders": 100.0, "monolith": 0.0}
    metrics = httpx.get(f"{setting.admin_url}/__facade/metrics", timeout=10).text
    assert 'strangler_rollout_info{from="monolith",route="orders",state="promoted"' in metrics


@pytest.mark.parametrize("setting", [0.3], indirect=True)
def test_a_canary_answering_500s_is_rolled_back(setting: Proxy) -> None:
    with traffic(setting.url) as statuses:
        process = rollout(setting, "start", "orders")
        output = LineReader(process)
        assert process.wait(timeout=120) == 1, output.text
    assert canary_share(setting.routing) == 0
    assert weights(setting.routing) == [10, 0]
    view = status(setting)
    assert view["state"] == "rolled_back"
    failed = [v for v in view["verdicts"] if v["result"] == "fail"]  # type: ignore[attr-defined]
    assert failed
    assert failed[0]["canary_n"] >= 1
    assert statuses.count(500) > 0


def test_kill_9_and_restart_finishes_without_repeating_a_step(setting: Proxy) -> None:
    with traffic(setting.url):
        process = rollout(setting, "start", "orders")
        output = LineReader(process)
        output.wait_for("50 %", timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        second = rollout(setting, "start", "orders")
        assert second.wait(timeout=120) == 0, LineReader(second).text
    assert weights(setting.routing) == [10, 50, 100]
    assert canary_share(setting.routing) == 100


def test_a_second_controller_is_refused_with_exit_2(setting: Proxy) -> None:
    with traffic(setting.url):
        first = rollout(setting, "start", "orders")
        output = LineReader(first)
        output.wait_for("10 %", timeout=60)
        second = rollout(setting, "start", "orders")
        text = LineReader(second)
        assert second.wait(timeout=30) == 2
        text.finish()
        assert "already running" in text.text
        abort = rollout(setting, "abort", "orders")
        assert abort.wait(timeout=60) == 0, LineReader(abort).text
        assert first.wait(timeout=60) == 1, output.text
    assert canary_share(setting.routing) == 0
