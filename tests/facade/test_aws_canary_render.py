"""Version canaries in the generated AWS configuration: the alias with its version weights
(``render sam``), the REST API stage with its stage variable, canary settings and one
invoke permission per alias (``render apigw --cloudformation``) — golden, cfn-lint clean;
what SAM would do by itself with the alias is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facade.aws import apigw, cloudformation, sam
from facade.exceptions import ConfigError
from facade.routing.loader import load_table, parse_table
from tests.facade.test_aws_render import GOLDEN, _cli, yaml_load

CANARIES = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9", aws: {instances: [i-0123456789abcdef0]}}
  orders:
    kind: lambda
    handler: extracted.orders.handler:lambda_handler
    aws: {function: shop-orders, alias: live}
    canary:
      mechanism: alias
      from: "7"
      to: "8"
      weight: 12.5
      local: {"7": "extracted.orders.handler:lambda_handler", "8": "extracted.orders.handler:lambda_handler"}
      steps: [12.5, 50, 100]
  payments:
    kind: lambda
    handler: extracted.orders.handler:lambda_handler
    aws: {function: shop-payments, alias: blue}
    canary:
      mechanism: stage
      stage: {api: shop-payments, name: live, variable: alias}
      from: blue
      to: green
      weight: 5
      local: {blue: "extracted.orders.handler:lambda_handler", green: "extracted.orders.handler:lambda_handler"}
      steps: [5, 25, 100]
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
  - {name: payments, match: {paths: ["/api/payments/*"]}, targets: {payments: 100}}
default: monolith
"""  # noqa: E501


@pytest.fixture
def routing(tmp_path: Path) -> Path:
    path = tmp_path / "canaries.yaml"
    path.write_text(CANARIES)
    return path


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (("render", "sam"), "sam-canaries.yaml"),
        (("render", "apigw", "--cloudformation"), "apigw-canaries.yaml"),
    ],
)
def test_canaries_render_their_golden_templates_and_lint_clean(
    routing: Path, args: tuple[str, ...], golden: str, tmp_path: Path
) -> None:
    rendered = _cli(*args, "-f", str(routing))
    assert rendered.returncode == 0, rendered.stderr
    text = rendered.stdout.replace(str(routing), "canaries.yaml")
    if os.environ.get("STRANGLER_UPDATE_GOLDEN"):
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text(), "regenerate with STRANGLER_UPDATE_GOLDEN=1"
    out = tmp_path / f"{golden}.json"
    written = _cli(*args, "-f", str(routing), "--format", "json", "--out", str(out))
    assert written.returncode == 0, written.stderr
    linted = _cli("lint", str(out))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_alias_serves_the_old_version_and_weighs_the_new_one(routing: Path) -> None:
    resources = sam.template(load_table(routing), "canaries.yaml")["Resources"]
    alias = resources["FunctionOrdersAlias"]["Properties"]
    assert alias["Name"] == "live"
    assert alias["FunctionVersion"] == "7"
    assert alias["RoutingConfig"] == {
        "AdditionalVersionWeights": [{"FunctionVersion": "8", "FunctionWeight": 0.125}]
    }
    assert "AutoPublishAlias" not in resources["FunctionOrders"]["Properties"]
    # the stage mechanism's function keeps SAM's alias: the stage picks among aliases
    assert resources["FunctionPayments"]["Properties"]["AutoPublishAlias"] == "blue"


def test_the_stage_calls_the_alias_its_variable_names_and_may_invoke_both(
    routing: Path,
) -> None:
    resources = apigw.template(load_table(routing), "canaries.yaml")["Resources"]
    stage = resources["StagePayments"]["Properties"]
    assert stage["Variables"] == {"alias": "blue"}
    assert stage["CanarySetting"]["PercentTraffic"] == 5
    assert stage["CanarySetting"]["StageVariableOverrides"] == {"alias": "green"}
    uri = resources["ProxyMethodPayments"]["Properties"]["Integration"]["Uri"]["Fn::Sub"]
    assert uri.endswith(":function:shop-payments:${!stageVariables.alias}/invocations")
    allowed = sorted(
        r["Properties"]["FunctionName"]["Fn::Sub"].rsplit(":", 1)[1]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission" and "RestApi" in str(r["Properties"])
    )
    assert allowed == ["blue", "green"]
    assert not any(r["Type"] == "AWS::ApiGateway::RestApi" and "Orders" in k
                   for k, r in resources.items())  # fmt: skip


def test_a_promoted_canary_renders_no_routing_and_no_canary(routing: Path) -> None:
    text = CANARIES.replace('to: "8"\n      weight: 12.5', 'to: "7"\n      weight: 0')
    text = text.replace("to: green\n      weight: 5", "to: blue\n      weight: 0")
    table = parse_table(text, "canaries.yaml")
    alias = sam.template(table, "x")["Resources"]["FunctionOrdersAlias"]["Properties"]
    assert "RoutingConfig" not in alias
    resources = apigw.template(table, "x")["Resources"]
    assert "CanarySetting" not in resources["StagePayments"]["Properties"]
    permissions = [k for k in resources if k.startswith("InvokePermissionPayments")]
    # the HTTP API's direct route, and the stage's one alias
    assert permissions == ["InvokePermissionPayments", "InvokePermissionPaymentsBlue"]


def test_codedeploy_shifting_an_alias_the_canary_block_moves_is_refused(routing: Path) -> None:
    with pytest.raises(ConfigError, match="drop --deployment-preference"):
        sam.template(load_table(routing), "x", "Canary10Percent5Minutes")


def test_the_rendered_templates_are_yaml_cloudformation_reads(routing: Path) -> None:
    document = sam.template(load_table(routing), "canaries.yaml")
    assert yaml_load(cloudformation.dump(document, "yaml"))["Resources"].keys() == (
        document["Resources"].keys()
    )
