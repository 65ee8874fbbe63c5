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
ELB_ARN = r"^arn:[\w-]+:elasticloadbalancing:[\w-]*:\d*:"
TARGET_GROUP_ARN = re.compile(ELB_ARN + r"(targetgroup/[^/]+/\w+)$")
BALANCER_ARN = re.compile(ELB_ARN + r"(?:loadbalancer|listener)/(app/[^/]+/\w+)(?:/\w+)?$")


@dataclass(frozen=True)
class ArmMetrics:
    """One backend's metrics: a namespace, its dimensions (a value may be a CloudFormation
    expression in a template), and the metric names of requests, errors and latency."""

    namespace: str
    dimensions: tuple[tuple[str, Any], ...]
    requests: str
    errors: tuple[str, ...]
    latency: str
    latency_unit: float  # seconds per unit of the latency metric

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
    "ALB",
    "LAMBDA",
    "ArmMetrics",
    "backend_metrics",
    "extended_statistic",
    "lambda_alias",
    "load_balancer_suffix",
    "target_group",
    "target_group_suffix",
]
