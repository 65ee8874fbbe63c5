"""The CloudWatch provider: the counts AWS keeps per target group and Lambda alias, read
back cumulatively through one GetMetricData per reading (moto's server on loopback);
what moto cannot answer (percentiles, pages, partial data) against answers of AWS's
documented shape through botocore's Stubber; a CloudWatch that fails is a provider error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from facade import aws_local
from facade.aws import metrics
from facade.aws.client import ElbClient
from facade.aws.cloudwatch import CloudWatchClient
from facade.exceptions import ConfigError
from facade.rollout.cloudwatch import CloudWatchProvider, arms_for_listener, cloudwatch_provider
from facade.rollout.providers import ProviderError
from facade.rollout.samples import ArmCounts
from facade.routing.loader import load_table
from tests.rollout.aws_stand_in import Balancer, balancer

ELB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012"
TG_ARN = f"{ELB}:targetgroup/shop-monolith/73e2d6bc24d8a067"
LB_ARN = f"{ELB}:loadbalancer/app/shop/50dc6c495c0c9188"
LISTENER = f"{ELB}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"


@pytest.fixture
def alb(aws_endpoints: aws_local.Endpoints, tmp_path: Path) -> Iterator[Balancer]:
    with balancer(aws_endpoints, tmp_path) as found:
        yield found


def _provider(alb: Balancer, start: datetime, clock: datetime) -> CloudWatchProvider:
    endpoint = alb.cloudwatch.meta.endpoint_url
    table = load_table(alb.routing)
    elb = ElbClient.connect(endpoint, aws_local.CREDENTIALS)
    elb.create_target_group(
        {
            "Name": f"{alb.prefix}-monolith",
            "Protocol": "HTTP",
            "Port": 8000,
            "VpcId": table.backends["monolith"].aws["vpc_id"],
        }
    )  # fmt: skip  - what `apply` creates
    arms = arms_for_listener(table, elb, alb.listener, alb.prefix)
    return CloudWatchProvider(
        CloudWatchClient.connect(endpoint, aws_local.CREDENTIALS),
        arms,
        start,
        quantile=None,  # moto computes no percentiles (module docstring)
        clock=lambda: clock,
    )


def test_target_group_and_alias_counts_are_read_back_cumulatively_since_the_start(
    alb: Balancer,
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=10)
    provider = _provider(alb, start + timedelta(seconds=25), now + timedelta(minutes=1))
    monolith = {
        "TargetGroup": metrics.target_group_suffix(alb.group_arn(f"{alb.prefix}-monolith")),
        "LoadBalancer": metrics.load_balancer_suffix(alb.load_balancer),
    }
    alias = {"FunctionName": alb.function, "Resource": f"{alb.function}:live"}
    other_alias = {"FunctionName": alb.function, "Resource": f"{alb.function}:blue"}
    other_group = {**monolith, "TargetGroup": "targetgroup/other/0123456789abcdef"}
    for minute, requests, errors5xx, refused in ((3, 100, 3, 1), (2, 50, 0, 0)):
        at = now - timedelta(minutes=minute)
        alb.put(metrics.ALB, "RequestCount", monolith, requests, at)
        alb.put(metrics.ALB, "HTTPCode_Target_5XX_Count", monolith, errors5xx, at)
        alb.put(metrics.ALB, "TargetConnectionErrorCount", monolith, refused, at)
        alb.put(metrics.LAMBDA, "Invocations", alias, requests // 5, at)
        alb.put(metrics.LAMBDA, "Errors", alias, errors5xx, at)
    # none of these is either arm's: before the start, another group, another alias
    alb.put(metrics.ALB, "RequestCount", monolith, 1000, start - timedelta(minutes=1))
    alb.put(metrics.ALB, "RequestCount", other_group, 1000, now - timedelta(minutes=2))
    alb.put(metrics.LAMBDA, "Invocations", other_alias, 1000, now - timedelta(minutes=2))
    alb.put(metrics.LAMBDA, "Invocations", {"FunctionName": alb.function}, 1000, now)

    baseline, canary = provider.read("orders", "monolith", "orders")
    assert baseline == ArmCounts(requests=150, errors=4)
    assert canary == ArmCounts(requests=30, errors=3)

    alb.put(metrics.LAMBDA, "Invocations", alias, 7, now - timedelta(minutes=1))
    assert provider.read("orders", "monolith", "orders")[1].requests == 37  # cumulative


def test_every_backend_is_found_on_the_listeners_load_balancer_or_as_its_alias(
    alb: Balancer,
) -> None:
    provider = _provider(alb, datetime.now(UTC), datetime.now(UTC))
    monolith, orders = provider.arms["monolith"], provider.arms["orders"]
    assert dict(monolith.dimensions) == {
        "TargetGroup": metrics.target_group_suffix(alb.group_arn(f"{alb.prefix}-monolith")),
        "LoadBalancer": "app/" + alb.load_balancer.split(":loadbalancer/app/")[1],
    }
    assert dict(orders.dimensions) == {
        "FunctionName": alb.function,
        "Resource": f"{alb.function}:live",
    }


def test_a_cloudwatch_that_cannot_be_reached_is_a_provider_error() -> None:
    endpoint = f"http://127.0.0.1:{aws_local.free_port()}"  # nothing listens there
    provider = CloudWatchProvider(
        CloudWatchClient.connect(endpoint, aws_local.CREDENTIALS),
        {"monolith": metrics.target_group("targetgroup/a/1", "app/b/2"),
         "orders": metrics.lambda_alias("shop-orders", "live")},
        datetime.now(UTC) - timedelta(minutes=5),
    )  # fmt: skip
    with pytest.raises(ProviderError, match="cloudwatch: get_metric_data"):
        provider.read("orders", "monolith", "orders")


def test_a_backend_without_known_metrics_is_a_provider_error() -> None:
    provider = CloudWatchProvider(
        CloudWatchClient(boto3.client("cloudwatch", **aws_local.CREDENTIALS)),
        {"monolith": metrics.target_group("targetgroup/a/1", "app/b/2")},
        datetime.now(UTC),
    )
    with pytest.raises(ProviderError, match="no metrics known for backend 'orders'"):
        provider.read("orders", "monolith", "orders")


# -- answers of AWS's documented shape, where moto cannot give them --------------------


def _stubbed(start: datetime, now: datetime) -> tuple[CloudWatchProvider, Stubber]:
    client = boto3.client("cloudwatch", **aws_local.CREDENTIALS)
    provider = CloudWatchProvider(
        CloudWatchClient(client),
        {
            "monolith": metrics.target_group(
                metrics.target_group_suffix(TG_ARN), metrics.load_balancer_suffix(LISTENER)
            ),
            "orders": metrics.lambda_alias("shop-orders", "live"),
        },
        start,
        quantile=0.95,
        clock=lambda: now,
    )
    return provider, Stubber(client)


def _result(id_: str, *values: float, status: str = "Complete") -> dict[str, Any]:
    stamps = [datetime(2026, 12, 3, 10, 0, tzinfo=UTC)] * len(values)
    return {"Id": id_, "Label": id_, "Timestamps": stamps, "Values": list(values),
            "StatusCode": status}  # fmt: skip


def test_one_request_follows_its_pages_and_reads_percentiles_in_seconds() -> None:
    start = datetime(2026, 12, 3, 10, 0, 42, tzinfo=UTC)
    provider, stub = _stubbed(start, datetime(2026, 12, 3, 10, 17, 5, tzinfo=UTC))
    queries = provider.queries("monolith", "orders", 18 * 60)
    expected = {
        "MetricDataQueries": queries,
        "StartTime": datetime(2026, 12, 3, 10, 0, tzinfo=UTC),  # CloudWatch's whole minute
        "EndTime": datetime(2026, 12, 3, 10, 17, 5, tzinfo=UTC),
        "ScanBy": "TimestampAscending",
    }
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("b_requests", 900), _result("b_errors0", 4),
                               _result("c_requests", 60)], "NextToken": "page-2"},
        expected,
    )  # fmt: skip
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("b_errors1", 2), _result("b_latency", 0.25),
                               _result("c_errors0", 1), _result("c_latency", 180.0)]},
        {**expected, "NextToken": "page-2"},
    )  # fmt: skip
    with stub:
        baseline, canary = provider.read("orders", "monolith", "orders")
    stub.assert_no_pending_responses()
    assert baseline == ArmCounts(requests=900, errors=6, quantile_seconds=0.25)
    assert canary == ArmCounts(requests=60, errors=1, quantile_seconds=0.18)  # ms → s
    by_id = {q["Id"]: q["MetricStat"] for q in queries}
    assert by_id["b_latency"]["Stat"] == "p95"
    assert by_id["c_latency"]["Metric"] == {
        "Namespace": "AWS/Lambda", "MetricName": "Duration",
        "Dimensions": [{"Name": "FunctionName", "Value": "shop-orders"},
                       {"Name": "Resource", "Value": "shop-orders:live"}],
    }  # fmt: skip
    assert by_id["b_requests"]["Metric"]["Dimensions"] == [
        {"Name": "TargetGroup", "Value": "targetgroup/shop-monolith/73e2d6bc24d8a067"},
        {"Name": "LoadBalancer", "Value": "app/shop/50dc6c495c0c9188"},
    ]
    assert {s["Period"] for s in by_id.values()} == {18 * 60}  # one period, the whole span


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"MetricDataResults": [_result("c_requests", 5, status="PartialData")]},
         "incomplete answer \\(c_requests: PartialData\\)"),
        ({"MetricDataResults": [], "Messages": [{"Code": "MaxQueryTimeRangeExceed",
                                                 "Value": "too long"}]},
         "MaxQueryTimeRangeExceed: too long"),
    ],
)  # fmt: skip
def test_half_an_answer_is_a_provider_error_never_few_requests(
    answer: dict[str, Any], message: str
) -> None:
    now = datetime(2026, 12, 3, 10, 5, tzinfo=UTC)
    provider, stub = _stubbed(now - timedelta(minutes=5), now)
    stub.add_response("get_metric_data", answer, {"MetricDataQueries": ANY, "StartTime": ANY,
                                                  "EndTime": ANY, "ScanBy": ANY})  # fmt: skip
    with stub, pytest.raises(ProviderError, match=message):
        provider.read("orders", "monolith", "orders")


def test_an_arm_with_no_requests_has_no_quantile() -> None:
    now = datetime(2026, 12, 3, 10, 5, tzinfo=UTC)
    provider, stub = _stubbed(now - timedelta(minutes=5), now)
    stub.add_response("get_metric_data", {"MetricDataResults": [_result("b_requests", 3)]})
    with stub:
        baseline, canary = provider.read("orders", "monolith", "orders")
    assert baseline == ArmCounts(requests=3)
    assert canary == ArmCounts()


def test_metric_dimensions_take_the_ends_of_the_arns_as_the_load_balancer_publishes_them() -> None:
    assert metrics.target_group_suffix(TG_ARN) == "targetgroup/shop-monolith/73e2d6bc24d8a067"
    assert metrics.load_balancer_suffix(LB_ARN) == "app/shop/50dc6c495c0c9188"
    assert metrics.load_balancer_suffix(LISTENER) == "app/shop/50dc6c495c0c9188"
    with pytest.raises(ConfigError, match="not a target group ARN"):
        metrics.target_group_suffix(LB_ARN)
    with pytest.raises(ConfigError, match="Application Load Balancer"):
        metrics.load_balancer_suffix(TG_ARN)
    assert [metrics.extended_statistic(q) for q in (0.5, 0.95, 0.99, 0.999)] == [
        "p50", "p95", "p99", "p99.9"
    ]  # fmt: skip
    assert dict(metrics.lambda_alias("f", None).dimensions) == {"FunctionName": "f"}


def test_strangler_rollout_reads_the_files_stand_in_unless_told_aws(
    alb: Balancer, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_table(alb.routing)  # its local.aws names the stand-in
    plan = table.route("orders").rollout
    assert plan is not None
    now = datetime.now(UTC)
    monkeypatch.setenv("STRANGLER_ALB_LISTENER", alb.listener)
    vpc = table.backends["monolith"].aws["vpc_id"]
    alb.elbv2.create_target_group(
        Name=f"{alb.prefix}-monolith", Protocol="HTTP", Port=8000, VpcId=vpc
    )
    started = (now - timedelta(minutes=5)).timestamp()
    provider = cloudwatch_provider(table, plan, started, prefix=alb.prefix)
    assert provider.statistic is None  # the plan has no latency check
    alias = {"FunctionName": alb.function, "Resource": f"{alb.function}:live"}
    alb.put(metrics.LAMBDA, "Invocations", alias, 12, now - timedelta(minutes=1))
    alb.put(metrics.LAMBDA, "Errors", alias, 1, now - timedelta(minutes=1))
    assert provider.arms["orders"] == metrics.lambda_alias(alb.function, "live")
    assert provider.read("orders", "monolith", "orders") == (
        ArmCounts(), ArmCounts(requests=12, errors=1)
    )  # fmt: skip
    monkeypatch.delenv("STRANGLER_ALB_LISTENER")
    with pytest.raises(ConfigError, match="name its listener"):
        cloudwatch_provider(table, plan, now.timestamp())
