"""A version canary's AWS calls against the stand-in (moto's server, in-process): each
step of the alias' version weights and of the REST API stage's canary is made, read back
and written to routing.yaml; promotion moves the alias (or the stage variable) and clears
the canary; a change AWS does not read back, or a file write that fails after AWS took
the change, leaves AWS as it was. What moto does not enforce (at most 2 versions, the
weight range, no ``$LATEST``) is shown accepted by moto and refused by our client. A
stage canary is read from the stage's access-log metrics (put as its metric filters
would: moto runs none), the baseline as the stage's less its canary's — so a canary
API Gateway answers 500 without invoking it fails the errors test."""

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
from facade.aws.metrics import LOG_METRICS_SETTLE, lambda_alias
from facade.exceptions import AwsError
from facade.rollout.analysis import Analyzer
from facade.rollout.cloudwatch import CloudWatchProvider
from facade.rollout.function_canary import (
    AliasTraffic,
    StageTraffic,
    VersionMover,
    version_provider,
)
from facade.rollout.plan import VersionCanary
from facade.rollout.samples import Result, Window
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


def test_cloudwatch_counts_each_version_apart_cumulatively_since_the_start(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path
) -> None:
    function = f"orders-{uuid.uuid4().hex[:8]}"
    table = load_table(_routing(tmp_path, function))
    canary = table.backends["orders"].canary
    assert canary is not None
    raw = boto3.client("cloudwatch", endpoint_url=aws_endpoints.aws, **aws_local.CREDENTIALS)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # as Lambda publishes an alias' invocations by version
    under = {"FunctionName": function, "Resource": f"{function}:live"}
    arms = {v: {**under, "ExecutedVersion": v} for v in ("1", "2")}
    elsewhere = under  # the alias as a whole: both versions, neither arm
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


# -- a stage canary, judged on API Gateway's view of it: the stage's access logs ---------


class AccessLogPoints:
    """Puts data points into ``Strangler/ApiGateway`` as the stage's metric filters would
    (moto's CloudWatch Logs runs no metric filter): the stage's log group counts every
    request, its ``/Canary`` group the canary's again."""

    def __init__(self, endpoint: str, api: str, stage: str = "live") -> None:
        self.raw = boto3.client("cloudwatch", endpoint_url=endpoint, **aws_local.CREDENTIALS)
        self.dimensions = [{"Name": "ApiName", "Value": api}, {"Name": "Stage", "Value": stage}]

    def put(self, metric: str, value: float, at: datetime) -> None:
        self.raw.put_metric_data(
            Namespace="Strangler/ApiGateway",
            MetricData=[{"MetricName": metric, "Value": value, "Unit": "Count",
                         "Timestamp": at, "Dimensions": self.dimensions}],
        )  # fmt: skip

    def minute(
        self, at: datetime, every: int, errors: int, canary: int, canary_errors: int
    ) -> None:
        """One minute of the stage: ``every`` requests (the canary's among them)."""
        self.put("Requests", every, at)
        self.put("5XXError", errors, at)
        self.put("CanaryRequests", canary, at)
        self.put("Canary5XXError", canary_errors, at)


def _stage_provider(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path, api: str, now: datetime
) -> tuple[VersionCanary, CloudWatchProvider]:
    table = load_table(_routing(tmp_path, api, "stage", baseline="live", canary="next"))
    canary = table.backends["orders"].canary
    assert canary is not None
    cloudwatch = CloudWatchClient.connect(aws_endpoints.aws, aws_local.CREDENTIALS)
    started = (now - timedelta(minutes=10)).timestamp()
    return canary, version_provider(table, replace_latency(canary), started, cloudwatch)


def test_a_stage_canary_is_read_from_the_access_logs_the_baseline_as_the_stage_less_its_canary(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path
) -> None:
    api = f"orders-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    canary, provider = _stage_provider(aws_endpoints, tmp_path, api, now)
    # a minute is read once all six filters have published it: LOG_METRICS_SETTLE later
    provider.clock = lambda: now + timedelta(seconds=LOG_METRICS_SETTLE, minutes=1)
    points = AccessLogPoints(aws_endpoints.aws, api)
    points.minute(now - timedelta(minutes=3), every=200, errors=4, canary=20, canary_errors=3)
    points.minute(now - timedelta(minutes=2), every=100, errors=1, canary=10, canary_errors=0)
    # none of these is either arm's: before the start, another stage, the Lambda aliases
    points.minute(now - timedelta(minutes=30), every=1000, errors=500, canary=100, canary_errors=50)
    AccessLogPoints(aws_endpoints.aws, api, "beta").minute(now, 500, 50, 50, 5)
    for alias in ("live", "next"):
        points.raw.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[{"MetricName": "Invocations", "Value": 999, "Timestamp": now,
                         "Dimensions": [{"Name": "FunctionName", "Value": api},
                                        {"Name": "Resource", "Value": f"{api}:{alias}"}]}],
        )  # fmt: skip
    baseline, canary_counts = provider.read("orders@canary", canary.baseline, canary.canary)
    assert (baseline.requests, baseline.errors) == (300 - 30, 5 - 3)
    assert (canary_counts.requests, canary_counts.errors) == (30, 3)
    points.minute(now - timedelta(minutes=1), every=50, errors=0, canary=5, canary_errors=0)
    baseline, canary_counts = provider.read("orders@canary", canary.baseline, canary.canary)
    assert (baseline.requests, canary_counts.requests) == (315, 35)  # cumulative


def test_a_canary_minute_published_before_the_stages_never_counts_the_baseline_below_zero(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path
) -> None:
    api = f"orders-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    canary, provider = _stage_provider(aws_endpoints, tmp_path, api, now)
    # a minute is read once all six filters have published it: LOG_METRICS_SETTLE later
    provider.clock = lambda: now + timedelta(seconds=LOG_METRICS_SETTLE, minutes=1)
    points = AccessLogPoints(aws_endpoints.aws, api)
    points.put("CanaryRequests", 10, now - timedelta(minutes=1))
    points.put("Canary5XXError", 2, now - timedelta(minutes=1))
    baseline, canary_counts = provider.read("orders@canary", canary.baseline, canary.canary)
    assert (baseline.requests, baseline.errors) == (0, 0)
    assert (canary_counts.requests, canary_counts.errors) == (10, 2)


def test_a_canary_api_gateway_cannot_invoke_fails_the_errors_test_with_no_lambda_invocation(
    aws_endpoints: aws_local.Endpoints, tmp_path: Path
) -> None:
    """The canary alias lacks its invoke permission: API Gateway answers its requests 500
    itself and Lambda counts no invocation of it — on Lambda's metrics the canary has no
    sample at all, on the stage's access logs it fails every request."""
    api = f"orders-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    canary, provider = _stage_provider(aws_endpoints, tmp_path, api, now)
    points = AccessLogPoints(aws_endpoints.aws, api)
    for minutes in (3, 2):
        at = now - timedelta(minutes=minutes)
        points.minute(at, every=500, errors=25, canary=25, canary_errors=25)
        points.raw.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[{"MetricName": "Invocations", "Value": 475, "Timestamp": at,
                         "Dimensions": [{"Name": "FunctionName", "Value": api},
                                        {"Name": "Resource", "Value": f"{api}:live"}]}],
        )  # fmt: skip
    lambda_view = CloudWatchProvider(
        provider.client,
        {alias: lambda_alias(api, alias) for alias in ("live", "next")},
        provider.start,
        quantile=None,
        clock=lambda: now + timedelta(minutes=1),
    )
    on_lambda = lambda_view.read("orders@canary", "live", "next")
    assert (on_lambda[0].requests, on_lambda[1].requests) == (950, 0)  # nothing to judge

    provider.clock = lambda: now - timedelta(minutes=5)
    origin = provider.read("orders@canary", canary.baseline, canary.canary)
    provider.clock = lambda: now + timedelta(seconds=LOG_METRICS_SETTLE, minutes=1)
    baseline, canary_counts = provider.read("orders@canary", canary.baseline, canary.canary)
    assert (baseline.requests, baseline.errors) == (950, 0)
    assert (canary_counts.requests, canary_counts.errors) == (50, 50)
    analyzer = Analyzer(replace_latency(canary).plan.analysis)
    analyzer.add(Window(baseline.minus(origin[0]), canary_counts.minus(origin[1]), 240))
    verdicts = {v.metric: v for v in analyzer.verdicts(50, 950, 200)}
    assert verdicts["errors"].result is Result.FAIL, verdicts["errors"]


def test_moto_evaluates_no_metric_math_so_the_provider_subtracts_itself(
    aws_endpoints: aws_local.Endpoints,
) -> None:
    api = f"orders-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = AccessLogPoints(aws_endpoints.aws, api)
    points.minute(now - timedelta(minutes=1), every=70, errors=0, canary=7, canary_errors=0)

    def stat(name: str) -> dict[str, object]:
        metric = {"Namespace": "Strangler/ApiGateway", "MetricName": name,
                  "Dimensions": points.dimensions}  # fmt: skip
        return {"Metric": metric, "Period": 600, "Stat": "Sum"}

    answer = points.raw.get_metric_data(
        MetricDataQueries=[
            {"Id": "every", "MetricStat": stat("Requests")},
            {"Id": "released", "MetricStat": stat("CanaryRequests")},
            {"Id": "baseline", "Expression": "every - released"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
    )
    values = {r["Id"]: r["Values"] for r in answer["MetricDataResults"]}
    assert values == {"every": [70.0], "released": [7.0], "baseline": []}
