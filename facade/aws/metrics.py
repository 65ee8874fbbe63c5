"""Where a backend's traffic shows in CloudWatch: named once, for the rollout's provider
(``facade.rollout.cloudwatch``) and for the alarms (``facade.aws.alarms``).

* A backend behind a **target group** (the monolith, an ECS service, a url backend with
  ``aws.target_group_arn``): namespace ``AWS/ApplicationELB``, dimensions
  ``TargetGroup`` = ``targetgroup/NAME/ID`` and ``LoadBalancer`` = ``app/NAME/ID`` — the
  ends of the two ARNs, as the load balancer publishes them (a full ARN matches nothing).
  Requests: ``RequestCount``; errors: ``HTTPCode_Target_5XX_Count`` and
  ``TargetConnectionErrorCount`` (a target that could not be reached, answered 502 by
  the load balancer itself); latency: ``TargetResponseTime`` in seconds.
* A **Lambda** backend: namespace ``AWS/Lambda``, dimensions ``FunctionName`` and
  ``Resource`` = ``FUNCTION:ALIAS`` (the alias the ALB invokes; without an alias only
  ``FunctionName``). Requests: ``Invocations``; errors: ``Errors`` (the invocations that
  raised or timed out — a 500 the function returns itself is a success to Lambda);
  latency: ``Duration`` in milliseconds.
* A **REST API stage under canary** (``mechanism: stage``): namespace
  ``Strangler/ApiGateway``, dimensions ``ApiName`` and ``Stage`` — the metrics the
  stage's access-log metric filters publish (``render apigw --cloudformation``, see
  ``facade.aws.version_canary``). API Gateway documents no metric dimension for a stage's
  canary, but writes each canary request's access-log line to the stage's log group
  *and* to the same group with ``/Canary`` appended: ``Requests``, ``5XXError`` and
  ``Latency`` (milliseconds) count every request of the stage, ``CanaryRequests``,
  ``Canary5XXError`` and ``CanaryLatency`` the canary's. The release is in the metric's
  name, not a dimension: a filter's dimension takes its value from a field of the log
  line, and both groups get the same line.

A target group's metrics are the whole group's: a group that serves several routes (the
monolith's usually does) is measured as one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind

ALB = "AWS/ApplicationELB"
LAMBDA = "AWS/Lambda"
ACCESS_LOGS = "Strangler/ApiGateway"
# each dimension of the access-log metrics, and the field of the log line it is read from
ACCESS_LOG_DIMENSIONS = (("ApiName", "api"), ("Stage", "stage"))
ELB_ARN = r"^arn:[\w-]+:elasticloadbalancing:[\w-]*:\d*:"
TARGET_GROUP_ARN = re.compile(ELB_ARN + r"(targetgroup/[^/]+/\w+)$")
BALANCER_ARN = re.compile(ELB_ARN + r"(?:loadbalancer|listener)/(app/[^/]+/\w+)(?:/\w+)?$")


@dataclass(frozen=True)
class ArmMetrics:
    """One backend's metrics: a namespace, its dimensions (a value may be a CloudFormation
    expression in a template), and the metric names of requests, errors and latency.

    ``minus``: metrics that count some of the same requests, which are not this arm's
    (a stage's log group receives its canary's requests too): the arm's requests and
    errors are its own less those of ``minus``. A quantile cannot be subtracted: the
    latency stays that of all the requests the arm's metrics count.

    ``settle``: metrics published by several sources apart (two log groups' metric
    filters, and each filter on its own) are read only for the minutes all of them have
    published: a minute is read once it is ``settle`` seconds old."""

    namespace: str
    dimensions: tuple[tuple[str, Any], ...]
    requests: str
    errors: tuple[str, ...]
    latency: str
    latency_unit: float  # seconds per unit of the latency metric
    minus: ArmMetrics | None = None
    settle: int = 0  # seconds a minute must be old before it is read (0: read to now)

    def dimension_list(self) -> list[dict[str, Any]]:
        return [{"Name": name, "Value": value} for name, value in self.dimensions]

    def metric(self, name: str) -> dict[str, Any]:
        dimensions = self.dimension_list()
        return {"Namespace": self.namespace, "MetricName": name, "Dimensions": dimensions}


def target_group_suffix(arn: str) -> str:
    """``arn:…:targetgroup/NAME/ID`` → ``targetgroup/NAME/ID``."""
    found = TARGET_GROUP_ARN.match(arn)
    if found is None:
        raise ConfigError(f"{arn!r}: not a target group ARN (arn:aws:elasticloadbalancing:…)")
    return found[1]


def load_balancer_suffix(arn: str) -> str:
    """``arn:…:loadbalancer/app/NAME/ID`` (or a listener ARN of it) → ``app/NAME/ID``."""
    found = BALANCER_ARN.match(arn)
    if found is None:
        raise ConfigError(
            f"{arn!r}: not the ARN of an Application Load Balancer or of one of its listeners"
        )
    return found[1]


def target_group(target_group_value: Any, load_balancer_value: Any) -> ArmMetrics:
    """A target group's metrics; the values are the ARN ends (or expressions giving them)."""
    return ArmMetrics(
        ALB,
        (("TargetGroup", target_group_value), ("LoadBalancer", load_balancer_value)),
        "RequestCount",
        ("HTTPCode_Target_5XX_Count", "TargetConnectionErrorCount"),
        "TargetResponseTime",
        1.0,
    )


def lambda_alias(function: str, alias: str | None) -> ArmMetrics:
    dimensions: tuple[tuple[str, Any], ...] = (("FunctionName", function),)
    if alias:
        dimensions += (("Resource", f"{function}:{alias}"),)
    return ArmMetrics(LAMBDA, dimensions, "Invocations", ("Errors",), "Duration", 0.001)


# A stage's minute is read once this old: its two groups' six filters publish apart, each
# a minute or so late; a reading between two of them would count the canary's requests
# as the baseline's, or its 5xx without its requests.
LOG_METRICS_SETTLE = 300


def stage_access_logs(api: str, stage: str, *, canary: bool) -> ArmMetrics:
    """What the access-log metric filters of REST API ``api``'s stage publish: of every
    request of the stage, or (``canary``) of its canary's requests."""
    release = "Canary" if canary else ""
    return ArmMetrics(
        ACCESS_LOGS,
        (("ApiName", api), ("Stage", stage)),
        f"{release}Requests",
        (f"{release}5XXError",),
        f"{release}Latency",
        0.001,
        settle=LOG_METRICS_SETTLE,
    )


def backend_metrics(backend: Backend, groups: Mapping[str, str], load_balancer: str) -> ArmMetrics:
    """Where ``backend`` shows: its Lambda alias, or its target group (``groups``: backend →
    target group ARN) on the load balancer (an ARN of it or of its listener)."""
    if backend.kind is BackendKind.LAMBDA:
        alias = backend.aws.get("alias")
        return lambda_alias(str(backend.aws["function"]), str(alias) if alias else None)
    arn = groups.get(backend.name)
    if arn is None:
        raise ConfigError(
            f"backends.{backend.name}: no target group found for it; `strangler apply` (or "
            "the ALB stack) creates it, or set aws.target_group_arn"
        )
    return target_group(target_group_suffix(arn), load_balancer_suffix(load_balancer))


def extended_statistic(quantile: float) -> str:
    """CloudWatch's name of a percentile: 0.95 → ``p95``, 0.999 → ``p99.9``."""
    if not 0 < quantile < 1:
        raise ConfigError(f"quantile {quantile}: must be between 0 and 1")
    return f"p{round(quantile * 100, 2):g}"


__all__ = [
    "ACCESS_LOGS",
    "ACCESS_LOG_DIMENSIONS",
    "ALB",
    "LAMBDA",
    "ArmMetrics",
    "backend_metrics",
    "extended_statistic",
    "lambda_alias",
    "load_balancer_suffix",
    "stage_access_logs",
    "target_group",
    "target_group_suffix",
]
