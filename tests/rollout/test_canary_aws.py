"""A version canary's AWS calls against the stand-in (moto's server, in-process): each
step of the alias' version weights and of the REST API stage's canary is made, read back
and written to routing.yaml; promotion moves the alias (or the stage variable) and clears
the canary; a change AWS does not read back, or a file write that fails after AWS took
the change, leaves AWS as it was. What moto does not enforce (at most 2 versions, the
weight range, no ``$LATEST``) is shown accepted by moto and refused by our client."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from facade import aws_local
from facade.aws.cloudwatch import CloudWatchClient
from facade.aws.lambda_client import check_routing
from facade.exceptions import AwsError
from facade.rollout.function_canary import (
    AliasTraffic,
    StageTraffic,
    VersionMover,
    version_provider,
)
from facade.rollout.plan import VersionCanary
from facade.routing import edit
from facade.routing.loader import load_table
from tests.facade.stage_canary import give_moto_stage_canaries
from tests.rollout.lambda_kit import Function, code_zip, published_function

ROUTING = """\
version: 1
facade: {audit_log: audit.jsonl}
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9"}
  orders:
    kind: lambda
    url: "http://127.0.0.1:10"
    aws: {function: %(function)s, alias: live}
    canary:                           # the new version under canary
      mechanism: %(mechanism)s
      from: "%(baseline)s"
      to: "%(canary)s"
      weight: 0
      %(stage)s
      steps: [10, 50, 100]
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
default: monolith
"""


@pytest.fixture
def function(aws_endpoints: aws_local.Endpoints) -> Function:
    """A function with versions 1 and 2 published and its alias ``live`` on 1."""
    return published_function(aws_endpoints.aws)


def _routing(tmp_path: Path, function: str, mechanism: str = "alias", **labels: str) -> Path:
    stage = (
        f"stage: {{api: {function}, name: live, variable: alias}}" if mechanism == "stage" else ""
    )
    path = tmp_path / "routing.yaml"
    path.write_text(
        ROUTING
        % {
            "function": function,
            "mechanism": mechanism,
            "baseline": labels.get("baseline", "1"),
            "canary": labels.get("canary", "2"),
            "stage": stage,
        }
    )
    return path


def _block(path: Path) -> tuple[str, str, int]:
    canary = load_table(path).backends["orders"].canary
    assert canary is not None
    return canary.baseline, canary.canary, canary.share


def test_alias_steps_are_read_back_and_promotion_moves_the_alias(
    function: Function, tmp_path: Path
) -> None:
    routing = _routing(tmp_path, function.name)
    mover = VersionMover(
        routing, "orders", AliasTraffic(function.client, function.name, "live", "1", "2")
    )
    for share, weight in ((100, 0.1), (500, 0.5), (1000, 1.0)):
        mover.move(share, "test")
        alias = function.lambda_.get_alias(FunctionName=function.name, Name="live")
        assert alias["FunctionVersion"] == "1"
        assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": weight}
        assert mover.read_back() == pytest.approx(share / 10)
        assert _block(routing) == ("1", "2", share)
    mover.promote("test")
    alias = function.lambda_.get_alias(FunctionName=function.name, Name="live")
    assert alias["FunctionVersion"] == "2"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert _block(routing) == ("2", "2", 0)
    assert "# the new version under canary" in routing.read_text()  # comments kept


def test_a_rollback_clears_the_alias_weights(function: Function, tmp_path: Path) -> None:
    routing = _routing(tmp_path, function.name)
    mover = VersionMover(
        routing, "orders", AliasTraffic(function.client, function.name, "live", "1", "2")
    )
    mover.move(500, "test")
    mover.move(0, "test")
    alias = function.client.alias(function.name, "live")
    assert (alias.version, dict(alias.weights)) == ("1", {})
    assert _block(routing) == ("1", "2", 0)


def test_a_file_write_that_fails_after_aws_took_the_step_puts_the_alias_back(
    function: Function, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = _routing(tmp_path, function.name)
    mover = VersionMover(
        routing, "orders", AliasTraffic(function.client, function.name, "live", "1", "2")
    )
    mover.move(100, "test")
    before = routing.read_text()

    def full_disk(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edit, "write_atomically", full_disk)
    with pytest.raises(OSError, match="No space"):
        mover.move(500, "test")
    alias = function.client.alias(function.name, "live")
    assert (alias.version, dict(alias.weights)) == ("1", {"2": 0.1})
    assert routing.read_text() == before


def test_moto_takes_routing_aws_refuses_and_the_client_refuses_it_first(
    function: Function,
) -> None:
    publish = function.lambda_.publish_version
    function.lambda_.update_function_code(FunctionName=function.name, ZipFile=code_zip())
    publish(FunctionName=function.name, Description="3")
    # moto stores three versions in one alias and a weight above 1 without a word
    function.lambda_.update_alias(
        FunctionName=function.name, Name="live", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5, "3": 1.5}},
    )  # fmt: skip
    for version, weights, why in (
        ("1", {"2": 0.5, "3": 0.1}, "at most one other"),
        ("1", {"2": 1.5}, "0.0-1.0"),
        ("1", {"2": -0.1}, "0.0-1.0"),
        ("$LATEST", {"2": 0.1}, "never \\$LATEST"),
        ("1", {"1": 0.1}, "other than the alias' own"),
        ("1", {"live": 0.1}, "published version"),
    ):
        with pytest.raises(AwsError, match=why):
            check_routing(version, weights)
        with pytest.raises(AwsError, match=why):
            function.client.set_alias(function.name, "live", version, weights)


@pytest.fixture
def stage(function: Function, aws_endpoints: aws_local.Endpoints) -> str:
    """A REST API named like the function, its stage ``live`` calling
    ``function:${stageVariables.alias}`` with alias=live."""
    api = boto3.client("apigateway", endpoint_url=aws_endpoints.aws, **aws_local.CREDENTIALS)
    rest = str(api.create_rest_api(name=function.name)["id"])
    root = api.get_resources(restApiId=rest)["items"][0]["id"]
    api.put_method(restApiId=rest, resourceId=root, httpMethod="ANY", authorizationType="NONE")
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
        f"123456789012:function:{function.name}:${{stageVariables.alias}}/invocations"
    )
    api.put_integration(
        restApiId=rest, resourceId=root, httpMethod="ANY", type="AWS_PROXY",
        integrationHttpMethod="POST", uri=uri,
    )  # fmt: skip
    api.create_deployment(restApiId=rest, stageName="live", variables={"alias": "live"})
    function.lambda_.create_alias(FunctionName=function.name, Name="next", FunctionVersion="2")
    return rest


def test_moto_drops_stage_canaries_and_the_read_back_refuses_the_step(
    function: Function, stage: str, tmp_path: Path
) -> None:
    routing = _routing(tmp_path, function.name, "stage", baseline="live", canary="next")
    traffic = StageTraffic(function.client, function.name, "live", "alias", "live", "next")
    with pytest.raises(AwsError, match="reads back canary None"):
        VersionMover(routing, "orders", traffic).move(100, "test")
    assert _block(routing) == ("live", "next", 0)
    assert function.client.stage(stage, "live").variables == {"alias": "live"}


def test_stage_canary_steps_are_read_back_and_promotion_moves_the_stage_variable(
    function: Function, stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    give_moto_stage_canaries(monkeypatch)
    routing = _routing(tmp_path, function.name, "stage", baseline="live", canary="next")
    traffic = StageTraffic(function.client, function.name, "live", "alias", "live", "next")
    mover = VersionMover(routing, "orders", traffic)
    for share in (100, 500, 0, 1000):
        mover.move(share, "test")
        found = function.client.stage(stage, "live")
        assert found.canary_percent == pytest.approx(share / 10)
        assert found.canary_variables == {"alias": "next"}
        assert found.variables == {"alias": "live"}
        assert _block(routing) == ("live", "next", share)
    mover.promote("test")
    found = function.client.stage(stage, "live")
    assert found.variables == {"alias": "next"}
    assert found.canary_percent is None
    assert _block(routing) == ("next", "next", 0)
    with pytest.raises(AwsError, match=r"0\.0-100\.0"):
        function.client.set_stage_canary(stage, "live", 100.5, {"alias": "next"})


@pytest.mark.parametrize("mechanism", ["alias", "stage"])
def test_cloudwatch_counts_each_version_apart_cumulatively_since_the_start(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path, mechanism: str
) -> None:
    function = f"orders-{uuid.uuid4().hex[:8]}"
    labels = {"baseline": "live", "canary": "next"} if mechanism == "stage" else {}
    table = load_table(_routing(tmp_path, function, mechanism, **labels))
    canary = table.backends["orders"].canary
    assert canary is not None
    raw = boto3.client("cloudwatch", endpoint_url=aws_endpoints.aws, **aws_local.CREDENTIALS)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if mechanism == "alias":  # as Lambda publishes an alias' invocations by version
        under = {"FunctionName": function, "Resource": f"{function}:live"}
        arms = {v: {**under, "ExecutedVersion": v} for v in ("1", "2")}
        elsewhere = under  # the alias as a whole: both versions, neither arm
    else:  # as Lambda publishes each alias the stage calls
        arms = {
            a: {"FunctionName": function, "Resource": f"{function}:{a}"} for a in labels.values()
        }
        elsewhere = {"FunctionName": function}
    base, new = canary.baseline, canary.canary

    def put(metric: str, dimensions: dict[str, str], value: float, minutes: int) -> None:
        raw.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[{
                "MetricName": metric, "Value": value, "Unit": "Count",
                "Timestamp": now - timedelta(minutes=minutes),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }],
        )  # fmt: skip

    for minutes, invocations, errors in ((3, 90, 1), (2, 60, 0)):
        put("Invocations", arms[base], invocations, minutes)
        put("Invocations", arms[new], invocations // 10, minutes)
        put("Errors", arms[new], errors * 2, minutes)
        put("Errors", arms[base], errors, minutes)
    put("Invocations", elsewhere, 1000, 2)
    put("Invocations", arms[new], 1000, 30)  # before the canary started
    cloudwatch = CloudWatchClient.connect(aws_endpoints.aws, aws_local.CREDENTIALS)
    started = (now - timedelta(minutes=10)).timestamp()
    provider = version_provider(table, replace_latency(canary), started, cloudwatch)
    provider.clock = lambda: now + timedelta(minutes=1)
    baseline, canary_counts = provider.read("orders@canary", base, new)
    assert (baseline.requests, baseline.errors) == (150, 1)
    assert (canary_counts.requests, canary_counts.errors) == (15, 2)
    put("Invocations", arms[new], 5, 1)
    assert provider.read("orders@canary", base, new)[1].requests == 20


def replace_latency(canary: VersionCanary) -> VersionCanary:
    """Without the latency quantile: moto computes no percentiles."""
    plan = dataclasses.replace(
        canary.plan, analysis=dataclasses.replace(canary.plan.analysis, latency=None)
    )
    return dataclasses.replace(canary, plan=plan)


def test_a_stage_whose_variable_was_changed_by_hand_refuses_the_step_and_is_put_back(
    function: Function, stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    give_moto_stage_canaries(monkeypatch)
    raw = boto3.client("apigateway", endpoint_url=function.lambda_.meta.endpoint_url,
                       **aws_local.CREDENTIALS)  # fmt: skip
    raw.update_stage(
        restApiId=stage,
        stageName="live",
        patchOperations=[{"op": "replace", "path": "/variables/alias", "value": "hotfix"}],
    )
    routing = _routing(tmp_path, function.name, "stage", baseline="live", canary="next")
    traffic = StageTraffic(function.client, function.name, "live", "alias", "live", "next")
    with pytest.raises(AwsError, match="beside 'hotfix'"):
        VersionMover(routing, "orders", traffic).move(100, "test")
    found = function.client.stage(stage, "live")
    assert (found.variables, found.canary_percent) == ({"alias": "hotfix"}, None)
    assert _block(routing) == ("live", "next", 0)
