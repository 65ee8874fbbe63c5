"""Version canaries in the generated AWS configuration: the alias with its version weights
(``render sam``), the REST API stage with its stage variable, canary settings, one
invoke permission per alias and its access logs — the stage's log group and its canary's,
with the metric filters publishing what the analysis reads (``render apigw
--cloudformation``) — golden, cfn-lint clean (strangler's metric filter rules catch what
cfn-lint's schema lets through); what SAM would do by itself with the alias is
refused."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from facade.aws import apigw, cloudformation, sam
from facade.exceptions import ConfigError
from facade.rollout.function_canary import version_arms
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


def test_the_stage_logs_every_request_and_its_filters_publish_what_the_analysis_reads(
    routing: Path,
) -> None:
    table = load_table(routing)
    resources = apigw.template(table, "canaries.yaml")["Resources"]
    stage = resources["StagePayments"]["Properties"]
    assert stage["CanarySetting"]["PercentTraffic"] == 5  # the canary is still rendered
    setting = stage["AccessLogSetting"]
    assert setting["DestinationArn"]["Fn::Sub"].endswith(":log-group:${AccessLogsPayments}")
    groups = {
        key: r["Properties"] for key, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert groups == {
        "AccessLogsPayments": {"LogGroupName": "/strangler/shop-payments/live",
                               "RetentionInDays": 30},
        "CanaryAccessLogsPayments": {"LogGroupName": "/strangler/shop-payments/live/Canary",
                                     "RetentionInDays": 30},
    }  # fmt: skip
    # a line as API Gateway writes it (any value it leaves empty: still one JSON object)
    values = {"$context.stage": "live", "$context.status": "502"}
    line = json.loads(
        re.sub(r"\$context\.[A-Za-z.]+", lambda m: values.get(m[0], "-"), setting["Format"])
    )
    assert {"requestId", "status", "responseLatency", "integrationStatus"} <= line.keys()
    filters = {}
    for r in resources.values():
        if r["Type"] == "AWS::Logs::MetricFilter":
            (found,) = r["Properties"]["MetricTransformations"]
            group = r["Properties"]["LogGroupName"]["Ref"]
            filters[group, found["MetricName"]] = (r["Properties"]["FilterPattern"], found)
    assert len(filters) == 6
    canary = table.backends["payments"].canary
    assert canary is not None
    arms = version_arms(table, canary)
    baseline = arms["blue"]
    assert baseline.minus == arms["green"]  # the stage's group gets the canary's too
    for group, arm in (("AccessLogsPayments", baseline), ("CanaryAccessLogsPayments",
                                                          arms["green"])):  # fmt: skip
        expected = {
            arm.requests: ("{ $.requestId = * }", "1", "Count"),
            arm.errors[0]: ('{ $.status = "5*" }', "1", "Count"),
            arm.latency: ("{ $.responseLatency = * }", "$.responseLatency", "Milliseconds"),
        }
        for metric, (pattern, value, unit) in expected.items():
            found_pattern, found = filters[group, metric]
            assert (found_pattern, found["MetricValue"], found["Unit"]) == (pattern, value, unit)
            assert found["MetricNamespace"] == arm.namespace == "Strangler/ApiGateway"
            assert "DefaultValue" not in found
            # each dimension is read from a field of the line: the value the analysis asks
            read = {d["Key"]: line[d["Value"].removeprefix("$.")] for d in found["Dimensions"]}
            assert read == dict(arm.dimensions) == {"ApiName": "shop-payments", "Stage": "live"}
            for selector in re.findall(r"\$\.(\w+)", found_pattern + found["MetricValue"]):
                assert selector in line


def test_the_metric_filter_rules_catch_what_cfn_lints_schema_lets_through(
    routing: Path, tmp_path: Path
) -> None:
    template = apigw.template(load_table(routing), "canaries.yaml")
    bad = template["Resources"]["MetricFilterPaymentsRequests"]["Properties"]
    transformation = bad["MetricTransformations"][0]
    transformation["DefaultValue"] = 0
    transformation["Dimensions"].append({"Key": "Release", "Value": "canary"})
    path = tmp_path / "bad.json"
    path.write_text(cloudformation.dump(template, "json"))
    result = _cli("lint", str(path))
    assert result.returncode == 1
    found = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("E")}
    assert found == {"E9111", "E9112"}, result.stdout
    assert "'canary' is no log event field" in result.stdout
    transformation.pop("DefaultValue")
    transformation["Dimensions"][-1]["Value"] = "$.release"
    transformation["Dimensions"].append({"Key": "Method", "Value": "$.httpMethod"})
    path.write_text(cloudformation.dump(template, "json"))
    result = _cli("lint", str(path))  # 4 dimensions: cfn-lint's own schema says so
    assert result.returncode == 1
    found = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("E")}
    assert found == {"E3032"}, result.stdout
    assert "maximum item count: 3, found: 4" in result.stdout
