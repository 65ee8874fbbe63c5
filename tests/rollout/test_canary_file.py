"""A Lambda backend's canary block in routing.yaml: what it means, every mistake with
file:line (including what AWS refuses and its stand-in takes), the edits a canary makes
to it, and how the facade picks a version per invocation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from facade.exceptions import ConfigError, RoutingFileError
from facade.proxy.lambda_versions import pick
from facade.rollout.plan import Mechanism, Provider, VersionCanary
from facade.routing.edit import edit_canary
from facade.routing.loader import load_table, parse_table

HEAD = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders:
    kind: lambda
    handler: app:handler
    aws: {function: shop-orders, alias: live}
    canary:
"""
TAIL = """\
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
default: monolith
"""
ALIAS = """\
      from: "1"
      to: "2"
      local: {"1": "app:handler", "2": "app_next:handler"}
      steps: [5, 50, 100]
"""


STAGE = """\
      mechanism: stage
      from: blue
      to: green
      stage: {api: s}
      local: {blue: a:b, green: a:b}
      steps: [100]
"""


def canary(block: str) -> VersionCanary:
    found = parse_table(HEAD + block + TAIL, "routing.yaml").backends["orders"].canary
    assert found is not None
    return found


def problems(block: str) -> list[str]:
    with pytest.raises(RoutingFileError) as caught:
        parse_table(HEAD + block + TAIL, "routing.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_smallest_block_is_an_alias_canary_from_nothing_with_the_rollout_defaults() -> None:
    found = canary(ALIAS)
    assert found.mechanism is Mechanism.ALIAS
    assert (found.baseline, found.canary, found.share) == ("1", "2", 0)
    assert (found.plan.baseline, found.plan.to) == ("1", "2")
    assert [s.share for s in found.plan.steps] == [50, 500, 1000]
    assert found.plan.analysis.provider is Provider.FACADE
    assert found.local["2"].handler == "app_next:handler"
    assert found.key == "orders@canary"


def test_a_stage_canary_names_its_api_stage_and_variable() -> None:
    found = canary(
        "      mechanism: stage\n      from: blue\n      to: green\n      weight: 2.5\n"
        "      stage: {api: shop, name: prod}\n"
        "      local: {blue: app:handler, green: app:handler}\n      steps: [2.5, 100]\n"
    )
    assert found.stage is not None
    assert (found.stage.api, found.stage.stage, found.stage.variable) == ("shop", "prod", "alias")
    assert found.share == 25
    # its access logs: API Gateway writes a canary request's line to the group + /Canary too
    assert found.stage.access_logs == "/strangler/shop/prod"
    assert found.stage.canary_access_logs == "/strangler/shop/prod/Canary"
    assert found.stage.log_retention == 30


def test_a_stage_canary_may_name_its_access_log_group_and_retention() -> None:
    found = canary(
        STAGE.replace("stage: {api: s}", "stage: {api: shop payments, log_group: /shop/access, "
                                         "log_retention: 90}")
    ).stage  # fmt: skip
    assert found is not None
    assert (found.access_logs, found.canary_access_logs) == ("/shop/access", "/shop/access/Canary")
    assert found.log_retention == 90


def test_a_code_directory_is_resolved_beside_the_routing_file(tmp_path: Path) -> None:
    (tmp_path / "build-2").mkdir()
    path = tmp_path / "routing.yaml"
    path.write_text(HEAD + ALIAS.replace('"2": "app_next:handler"',
                    '"2": {handler: "app:handler", code: build-2}') + TAIL)  # fmt: skip
    found = load_table(path).backends["orders"].canary
    assert found is not None
    assert found.local["2"].code == str(tmp_path / "build-2")


@pytest.mark.parametrize(
    ("block", "line", "message"),
    [
        (ALIAS.replace('to: "2"', 'to: "$LATEST"'), 10, "never $LATEST"),
        (ALIAS.replace('from: "1"', "from: live"), 9, "published version number"),
        (ALIAS + "      weight: 100.05\n", 13, "steps of 0.1"),
        (ALIAS + "      weight: -1\n", 13, "from 0 to 100"),
        (ALIAS.replace('to: "2"', 'to: "1"') + "      weight: 10\n", 13, "nothing is under canary"),
        (ALIAS + "      stage: {api: shop}\n", 13, "only mechanism: stage"),
        (ALIAS + "      mechanism: weights\n", 13, "one of alias, stage"),
        (ALIAS.replace("steps: [5, 50, 100]", "steps: [5, 50]"), 12, "ends at 100"),
        (ALIAS.replace("steps: [5, 50, 100]", "steps: [50, 5, 100]"), 12, "above the one before"),
        (ALIAS.replace('"2": "app_next:handler"', '"3": "app:handler"'), 11, "no handler for '2'"),
        (ALIAS + "      analysis: {provider: prometheus, prometheus: 'http://p:9090'}\n", 13,
         "facade (the facade's per-version series) or cloudwatch"),
        (ALIAS + "      gates: {shadow: {max_difference: 1}}\n", 13, "not a function's versions"),
        ("      mechanism: stage\n      from: \"1\"\n      to: green\n      stage: {api: s}\n"
         "      local: {green: app:handler}\n      steps: [100]\n", 10, "Lambda alias name"),
        ("      mechanism: stage\n      from: blue\n      to: green\n      stage: {name: p-q}\n"
         "      local: {blue: a:b, green: a:b}\n      steps: [100]\n", 12, "the REST API's name"),
        (ALIAS + "      weigth: 5\n", 13, "did you mean 'weight'"),
        (STAGE.replace("{api: s}", "{api: s, log_retention: 10}"), 12,
         "days CloudWatch Logs keeps the access logs, one of 1, 3, 5"),
        (STAGE.replace("{api: s}", "{api: s, log_retention: true}"), 12, "days CloudWatch Logs"),
        (STAGE.replace("{api: s}", "{api: shop payments}"), 12,
         "'/strangler/shop payments/live' (the default, from the API's and the stage's names): "
         "not a CloudWatch Logs group name"),
        (STAGE.replace("{api: s}", "{api: s, log_group: /my logs}"), 12,
         "'/my logs': not a CloudWatch Logs group name"),
        (STAGE.replace("{api: s}", "{api: s, log_group: /" + "a" * 505 + "}"), 12,
         "no room left for the '/Canary' API Gateway appends"),
    ],
)  # fmt: skip
def test_every_mistake_is_reported_with_its_line(block: str, line: int, message: str) -> None:
    found = problems(block)
    assert any(f"routing.yaml:{line}:" in p and message in p for p in found), found


def test_only_a_lambda_backend_has_versions_to_canary() -> None:
    text = (HEAD + ALIAS + TAIL).replace("kind: lambda\n    handler: app:handler\n",
                                         "kind: ecs\n    url: 'http://127.0.0.1:9'\n")  # fmt: skip
    with pytest.raises(RoutingFileError, match="only a lambda backend"):
        parse_table(text, "routing.yaml")


def test_a_step_and_a_promotion_edit_the_block_keep_its_comments_and_log_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(HEAD + ALIAS.replace('to: "2"', 'to: "2"   # the new release') + TAIL)
    change = edit_canary(path, "orders", 125, who="tester")
    assert change.describe() == "canary orders@canary: 1 100% → 87.5%, 2 0% → 12.5%"
    assert canary_of(path).share == 125
    edit_canary(path, "orders", 0, promote=True, who="tester")
    found = canary_of(path)
    assert (found.baseline, found.canary, found.share) == ("2", "2", 0)
    assert "# the new release" in path.read_text()
    log = [json.loads(line) for line in (tmp_path / "var/routing-audit.jsonl").open()]
    assert [(e["action"], e["route"], e["who"]) for e in log] == [
        ("canary", "orders@canary", "tester"),
        ("canary.promote", "orders@canary", "tester"),
    ]
    with pytest.raises(ConfigError, match="no canary block"):
        edit_canary(path, "monolith", 10)


def canary_of(path: Path) -> VersionCanary:
    found = load_table(path).backends["orders"].canary
    assert found is not None
    return found


def test_each_invocation_draws_its_version_with_the_weight() -> None:
    backend = parse_table(HEAD + ALIAS + "      weight: 25\n" + TAIL).backends["orders"]
    draw = random.Random(7).random
    picked = [pick(backend, draw) for _ in range(4000)]
    new = sum(1 for p in picked if p is not None and p[0] == "2")
    assert 900 <= new <= 1100  # 25 % of 4000, well inside 5 standard deviations
    assert {p[1].handler for p in picked if p is not None} == {"app:handler", "app_next:handler"}
    at_zero = parse_table(HEAD + ALIAS + TAIL).backends["orders"]
    assert {pick(at_zero, draw)[0] for _ in range(200)} == {"1"}  # type: ignore[index]
    whole = parse_table(HEAD + ALIAS + "      weight: 100\n" + TAIL).backends["orders"]
    assert {pick(whole, draw)[0] for _ in range(200)} == {"2"}  # type: ignore[index]
    assert pick(parse_table(HEAD.replace("    canary:\n", "") + TAIL).backends["orders"]) is None
