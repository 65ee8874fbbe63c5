"""Adversarial review of what ``render apigw --cloudformation`` gives a stage canary's
access logs (README "How a stage canary is measured"): the order CloudFormation creates
things in, and two stage canaries in one routing file. Each test fails on the code as it
landed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from facade.aws import apigw
from facade.exceptions import ConfigError, RoutingFileError
from facade.rollout.function_canary import version_arms
from facade.routing.loader import load_table
from tests.facade.test_aws_canary_render import CANARIES


def _references(value: Any) -> set[str]:
    """The logical ids a property value refers to (Ref, Fn::GetAtt, ${…} of Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {
                    name.split(".")[0]
                    for name in re.findall(r"\$\{([^!}][^}]*)\}", text)
                    if not name.startswith("AWS::")
                }
                if isinstance(inner, list):
                    found |= _references(inner[1])
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _after(resources: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before ``logical_id`` (transitively)."""
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        resource = resources[todo.pop()]
        depends = resource.get("DependsOn", [])
        direct = {depends} if isinstance(depends, str) else set(depends)
        direct |= _references(resource.get("Properties", {}))
        for name in direct & resources.keys():
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


@pytest.fixture
def routing(tmp_path: Path) -> Path:
    path = tmp_path / "canaries.yaml"
    path.write_text(CANARIES)
    return path


def test_the_stage_takes_canary_traffic_only_once_the_canary_group_and_its_filters_exist(
    routing: Path,
) -> None:
    """The README: the ``/Canary`` group is "created by the template too … so that its
    filters exist before the first canary request". Nothing in the template orders the
    stage (which carries ``CanarySetting``) after that group or its filters: CloudFormation
    creates resources without a dependency in parallel, so the stage may serve canary
    requests first — their lines counted by no filter, or API Gateway creating the
    ``/Canary`` group itself (its CloudWatch Logs role may), after which the template's
    ``AWS::Logs::LogGroup`` of the same name fails with "already exists". On a stack
    update adding the access logs to a stage already under canary (live traffic) that
    race is real."""
    resources = apigw.template(load_table(routing), "canaries.yaml")["Resources"]
    assert "CanarySetting" in resources["StagePayments"]["Properties"]
    before = _after(resources, "StagePayments")
    canary_side = {"CanaryAccessLogsPayments"} | {
        key
        for key, r in resources.items()
        if r["Type"] == "AWS::Logs::MetricFilter"
        and r["Properties"]["LogGroupName"] == {"Ref": "CanaryAccessLogsPayments"}
    }
    assert len(canary_side) == 4
    assert canary_side <= before, sorted(canary_side - before)


TWO_ON_ONE_STAGE = """\
  refunds:
    kind: lambda
    handler: extracted.orders.handler:lambda_handler
    aws: {function: shop-refunds, alias: blue}
    canary:
      mechanism: stage
      stage: {api: shop-payments, name: live, variable: alias}
      from: blue
      to: green
      weight: 5
      local: {blue: "extracted.orders.handler:lambda_handler", green: "extracted.orders.handler:lambda_handler"}
      steps: [5, 25, 100]
routes:
"""  # noqa: E501


def test_two_stage_canaries_naming_one_api_and_stage_neither_share_logs_nor_metrics(
    tmp_path: Path,
) -> None:
    """Each backend with ``mechanism: stage`` gets a REST API of its own, named
    ``stage.api``: two backends that give the same ``api`` and ``name`` (REST API names
    need not be unique, and each backend's was harmless before the access logs) now get
    two ``AWS::Logs::LogGroup`` of one ``LogGroupName`` — the stack fails on AWS — and
    the same ``ApiName``/``Stage`` metrics, so each canary would be judged on the
    other's traffic too. Either the file says so at its line, or the two are apart."""
    path = tmp_path / "canaries.yaml"
    path.write_text(CANARIES.replace("routes:\n", TWO_ON_ONE_STAGE, 1))
    refused = ""
    try:
        table = load_table(path)
    except (RoutingFileError, ConfigError) as exc:
        refused = str(exc)
    if refused:
        assert "refunds" in refused or "payments" in refused, refused
        return
    resources = apigw.template(table, "canaries.yaml")["Resources"]
    names = [
        r["Properties"]["LogGroupName"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    ]
    assert len(names) == len(set(names)), names
    dimensions = set()
    for backend in ("payments", "refunds"):
        canary = table.backends[backend].canary
        assert canary is not None
        dimensions.add(version_arms(table, canary)[canary.canary].dimensions)
    assert len(dimensions) == 2, dimensions
