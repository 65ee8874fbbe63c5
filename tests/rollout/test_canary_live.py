"""``strangler canary start`` against a real facade running two versions of a Lambda
function from two code directories, under live traffic: a healthy version is promoted
(the file's ``from`` moves to it), a faulty one rolled back to 0 %."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from facade import aws_local
from facade.rollout.providers import INVOCATION_DURATION, INVOCATIONS, parse_exposition
from facade.routing.loader import load_table
from tests.facade.conftest import LineReader
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream
from tests.rollout import live_kit
from tests.rollout.lambda_kit import published_function

FUNCTIONS = Path(__file__).parent / "functions"
ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "%(monolith)s"}
  orders:
    kind: lambda
    handler: versioned:handler
    aws: {function: %(function)s, alias: live}
    canary:
      mechanism: alias
      from: "1"
      to: "%(to)s"
      weight: 0
      local:
        "1": {handler: "versioned:handler", code: "%(functions)s/v1"}
        "%(to)s": {handler: "versioned:handler", code: "%(functions)s/v%(to)s"}
      steps: [10, 50, 100]
      step: {min_time: 2, min_sample: 40, max_wait: 60}
      bake: 2
      interval: 1
      on_inconclusive: rollback
      analysis: {errors: {max_increase: 5}, latency: null}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {orders: 100}
default: monolith
%(local)s"""


def traffic(url: str) -> AbstractContextManager[list[tuple[int, str]]]:
    """Requests to the function's route on two threads until the block ends; yields
    (status, version that answered) of each."""

    def seen(answer: httpx.Response | None) -> tuple[int, str]:
        if answer is None:
            return (0, "")
        return (answer.status_code, answer.headers.get("x-version", ""))

    return live_kit.traffic(url, seen)


def canary(facade: Proxy, *args: str) -> subprocess.Popen[str]:
    return live_kit.command(facade, "canary", *args)


def status(facade: Proxy) -> dict[str, object]:
    return live_kit.status(facade, "canary")


def audit(routing: Path, action: str) -> list[dict[str, object]]:
    lines = (routing.parent / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("action") == action]


@pytest.fixture
def setting(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Proxy]:
    to = str(getattr(request, "param", "2"))
    with upstream("monolith") as old:
        routing = tmp_path / "routing.yaml"
        values = {"monolith": old.url, "to": to, "functions": FUNCTIONS}
        routing.write_text(ROUTING % {**values, "function": "shop-orders", "local": ""})
        with proxy(routing) as facade:
            yield facade


def test_a_healthy_version_is_promoted_and_the_alias_moves_to_it(setting: Proxy) -> None:
    with traffic(setting.url) as seen:
        process = canary(setting, "start", "orders")
        output = LineReader(process)
        assert process.wait(timeout=120) == 0, output.text
    block = load_table(setting.routing).backends["orders"].canary
    assert block is not None
    assert (block.baseline, block.canary, block.share) == ("2", "2", 0)
    assert [e["share"] for e in audit(setting.routing, "rollout.weight")] == [10, 50, 100]
    assert [e["action"] for e in audit(setting.routing, "canary.promote")] == ["canary.promote"]
    versions = Counter(version for _, version in seen)
    assert versions["1"] > 0
    assert versions["2"] > 0
    assert {status for status, _ in seen} == {200}
    view = status(setting)
    assert view["state"] == "promoted"
    assert view["route"] == "orders@canary"
    assert view["configured"] == {"2": 100.0, "1": 0.0}


@pytest.mark.parametrize("setting", ["3"], indirect=True)
def test_a_version_that_raises_is_rolled_back_to_0(setting: Proxy) -> None:
    with traffic(setting.url) as seen:
        process = canary(setting, "start", "orders")
        output = LineReader(process)
        assert process.wait(timeout=120) == 1, output.text
    block = load_table(setting.routing).backends["orders"].canary
    assert block is not None
    assert (block.baseline, block.canary, block.share) == ("1", "3", 0)
    assert [e["share"] for e in audit(setting.routing, "rollout.weight")] == [10, 0]
    view = status(setting)
    assert view["state"] == "rolled_back"
    failed = [v for v in view["verdicts"] if v["result"] == "fail"]  # type: ignore[attr-defined]
    assert failed
    assert failed[0]["canary_n"] >= 1
    assert any(status == 502 for status, _ in seen)
    # the versions' own series show where the errors were
    metrics = httpx.get(f"{setting.admin_url}/__facade/metrics", timeout=5).text
    baseline, faulty = parse_exposition(
        metrics,
        "orders",
        ("1", "3"),
        families=(INVOCATIONS, INVOCATION_DURATION),
        labels=("backend", "version"),
    )
    assert faulty.errors >= 1
    assert baseline.errors == 0


def test_with_apply_each_step_reaches_the_alias_on_the_stand_in_and_is_read_back(
    tmp_path: Path, aws_endpoints: aws_local.Endpoints
) -> None:
    function = published_function(aws_endpoints.aws)
    with upstream("monolith") as old:
        routing = tmp_path / "routing.yaml"
        values = {"monolith": old.url, "to": "2", "functions": FUNCTIONS}
        local = f"local:\n  aws: {{endpoint: {aws_endpoints.aws}}}\n"
        routing.write_text(ROUTING % {**values, "function": function.name, "local": local})
        with proxy(routing) as facade, traffic(facade.url):
            process = canary(facade, "start", "orders", "--apply")
            output = LineReader(process)
            assert process.wait(timeout=120) == 0, output.text
            view = status(facade)
    alias = function.client.alias(function.name, "live")
    assert (alias.version, dict(alias.weights)) == ("2", {})
    assert [e["share"] for e in audit(routing, "rollout.weight")] == [10, 50, 100]
    assert view["state"] == "promoted"
    assert view["actual"] == 100.0  # the promotion read back: the alias serves version 2
