"""``strangler render alarms``: CloudWatch alarms as AWS's own safety net for every route,
whether or not a rollout is watching it.

For each backend a route forwards to (once, however many routes share it), on the
metrics ``facade.aws.metrics`` names:

* a backend behind a target group: ``Errors<B>``, the share of its requests that were
  5xx or connection errors, computed by metric math from ``RequestCount``,
  ``HTTPCode_Target_5XX_Count`` and ``TargetConnectionErrorCount`` (a minute with fewer
  than ``min_requests`` requests counts as 0 %: a single failure at low traffic alarms
  nobody); ``Latency<B>``, its ``TargetResponseTime`` quantile over a threshold;
* a Lambda backend: ``Errors<B>``, the share of its alias's ``Invocations`` that were
  ``Errors`` (same guard); ``Latency<B>``, the alias's ``Duration`` quantile.

Each is judged per minute and alarms when 3 of the last 5 minutes breach; a minute
without data is not a breach. Then per route a composite alarm ``Route<R>`` is in ALARM
when any alarm of its backends is: the one to wire to a pager or to CodeDeploy-style
automation. The optional ``AlarmTopicArn`` parameter (an SNS topic) gets every change.

Thresholds: a route with a ``rollout:`` plan uses its critical guard
(``analysis.critical.errors`` and ``min_requests``) and its latency quantile; others use
the command's options. A backend shared by several routes gets the strictest.

Target groups are named by parameters, so the template deploys beside the ALB stack
(``strangler render alb``): ``LoadBalancerArn``, and ``TargetGroup<B>Arn`` for each group
that stack creates (its outputs of the same names); a backend with
``aws.target_group_arn`` uses that. The dimensions are the ends of those ARNs
(``targetgroup/…``, ``app/…``), cut out with ``Fn::Split`` where only the stack knows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facade.aws import metrics
from facade.aws.cloudformation import logical_id
from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind, Route, RoutingTable

PERIOD = 60
EVALUATION_PERIODS = 5
DATAPOINTS_TO_ALARM = 3


@dataclass(frozen=True)
class Thresholds:
    errors: float = 5.0  # percent of requests that were 5xx or connection errors
    min_requests: int = 20  # in a minute, before the error rate counts
    latency: float = 2.0  # seconds
    quantile: float = 0.95


@dataclass(frozen=True)
class Watched:
    """One backend and what it is watched for."""

    backend: Backend
    routes: tuple[str, ...]
    thresholds: Thresholds


def _route_thresholds(route: Route, given: Thresholds) -> Thresholds:
    plan = route.rollout
    if plan is None:
        return given
    latency = plan.analysis.latency
    return Thresholds(
        errors=plan.analysis.critical.errors,
        min_requests=plan.analysis.critical.min_requests,
        latency=given.latency,
        quantile=latency.quantile if latency is not None else given.quantile,
    )


def _strictest(a: Thresholds, b: Thresholds) -> Thresholds:
    return Thresholds(
        min(a.errors, b.errors),
        min(a.min_requests, b.min_requests),
        min(a.latency, b.latency),
        max(a.quantile, b.quantile),
    )


def forwarding_routes(table: RoutingTable) -> tuple[Route, ...]:
    """The routes that forward (deny rules answer themselves), then the default."""
    return (*(r for r in table.routes if r.fixed is None), table.default)


def watched(table: RoutingTable, given: Thresholds) -> tuple[Watched, ...]:
    """Every backend a route forwards to, with its routes and thresholds, table order."""
    routes: dict[str, list[str]] = {}
    found: dict[str, Thresholds] = {}
    for route in forwarding_routes(table):
        limits = _route_thresholds(route, given)
        for target in route.targets:
            routes.setdefault(target.backend, []).append(route.name)
            seen = found.get(target.backend)
            found[target.backend] = limits if seen is None else _strictest(seen, limits)
    return tuple(
        Watched(backend, tuple(routes[name]), found[name])
        for name, backend in table.backends.items()
        if name in routes
    )


def _select(index: int, separator: str, parameter: str) -> dict[str, Any]:
    return {"Fn::Select": [index, {"Fn::Split": [separator, {"Ref": parameter}]}]}


def _arm(table: RoutingTable, backend: Backend, parameters: dict[str, Any]) -> metrics.ArmMetrics:
    if backend.kind is BackendKind.LAMBDA:
        alias = backend.aws.get("alias")
        return metrics.lambda_alias(str(backend.aws["function"]), str(alias) if alias else None)
    balancer = _select(1, "loadbalancer/", "LoadBalancerArn")
    given = backend.aws.get("target_group_arn")
    if given:
        try:
            return metrics.target_group(metrics.target_group_suffix(str(given)), balancer)
        except ConfigError as exc:
            raise ConfigError(
                f"{table.source}: backends.{backend.name}.aws.target_group_arn: {exc}"
            ) from exc
    parameter = logical_id("TargetGroup", backend.name) + "Arn"
    parameters[parameter] = {
        "Type": "String",
        "AllowedPattern": "^arn:[\\w-]+:elasticloadbalancing:.+:targetgroup/.+$",
        "Description": f"The target group of {backend.name} (the ALB stack's {parameter})",
    }
    return metrics.target_group(_select(5, ":", parameter), balancer)


def _common(name: str, description: str) -> dict[str, Any]:
    return {
        "AlarmName": {"Fn::Sub": f"${{AWS::StackName}}-{name}"},
        "AlarmDescription": description,
        "ActionsEnabled": True,
        "AlarmActions": {"Fn::If": ["Notify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]},
        "OKActions": {"Fn::If": ["Notify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]},
        "EvaluationPeriods": EVALUATION_PERIODS,
        "DatapointsToAlarm": DATAPOINTS_TO_ALARM,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",  # no traffic is no evidence
    }


def _errors_alarm(item: Watched, arm: metrics.ArmMetrics) -> dict[str, Any]:
    limits = item.thresholds
    names = ["requests", *(f"errors{i}" for i in range(len(arm.errors)))]
    queries: list[dict[str, Any]] = [
        {
            "Id": query_id,
            "MetricStat": {"Metric": arm.metric(metric), "Period": PERIOD, "Stat": "Sum"},
            "ReturnData": False,
        }
        for query_id, metric in zip(names, (arm.requests, *arm.errors), strict=True)
    ]
    failed = " + ".join(f"FILL({n}, 0)" for n in names[1:])
    queries.append(
        {
            "Id": "rate",
            "Label": f"{item.backend.name}: errors, % of requests",
            "Expression": f"IF(requests >= {limits.min_requests}, 100 * ({failed}) / requests, 0)",
            "ReturnData": True,
        }
    )
    what = " and ".join(arm.errors)
    description = (
        f"strangler: {item.backend.name} ({', '.join(item.routes)}): {what} over "
        f"{limits.errors:g} % of {arm.requests} in 3 of 5 minutes "
        f"(minutes under {limits.min_requests} requests count as 0 %)"
    )
    properties = _common(f"{item.backend.name}-errors", description)
    properties.update(Metrics=queries, Threshold=limits.errors)
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _latency_alarm(item: Watched, arm: metrics.ArmMetrics) -> dict[str, Any]:
    limits = item.thresholds
    statistic = metrics.extended_statistic(limits.quantile)
    threshold = limits.latency / arm.latency_unit
    unit = "s" if arm.latency_unit == 1.0 else "ms"
    description = (
        f"strangler: {item.backend.name} ({', '.join(item.routes)}): {arm.latency} "
        f"{statistic} over {threshold:g} {unit} in 3 of 5 minutes"
    )
    properties = _common(f"{item.backend.name}-latency", description)
    properties.update(
        Namespace=arm.namespace,
        MetricName=arm.latency,
        Dimensions=arm.dimension_list(),
        ExtendedStatistic=statistic,
        Period=PERIOD,
        Threshold=threshold,
    )
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def template(table: RoutingTable, source: str, given: Thresholds | None = None) -> dict[str, Any]:
    limits = given or Thresholds()
    parameters: dict[str, Any] = {
        "LoadBalancerArn": {
            "Type": "String",
            "AllowedPattern": "^arn:[\\w-]+:elasticloadbalancing:.+:loadbalancer/app/.+$",
            "Description": "The Application Load Balancer in front of the monolith",
        },
        "AlarmTopicArn": {
            "Type": "String",
            "Default": "",
            "Description": "SNS topic told of every alarm change; empty: none",
        },
    }
    resources: dict[str, Any] = {}
    alarms_of: dict[str, list[str]] = {}
    for item in watched(table, limits):
        arm = _arm(table, item.backend, parameters)
        errors_id = logical_id("Errors", item.backend.name)
        latency_id = logical_id("Latency", item.backend.name)
        resources[errors_id] = _errors_alarm(item, arm)
        resources[latency_id] = _latency_alarm(item, arm)
        alarms_of[item.backend.name] = [errors_id, latency_id]
    outputs: dict[str, Any] = {}
    for route in forwarding_routes(table):
        members = [a for t in route.targets for a in alarms_of[t.backend]]
        route_id = logical_id("Route", route.name)
        backends = ", ".join(t.backend for t in route.targets)
        resources[route_id] = {
            "Type": "AWS::CloudWatch::CompositeAlarm",
            "Properties": {
                "AlarmName": {"Fn::Sub": f"${{AWS::StackName}}-route-{route.name}"},
                "AlarmDescription": f"strangler: route {route.name}: an alarm of {backends}",
                "AlarmRule": {"Fn::Sub": " OR ".join(f'ALARM("${{{m}}}")' for m in members)},
                "ActionsEnabled": True,
                "AlarmActions": {
                    "Fn::If": ["Notify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
                },
            },
        }
        outputs[route_id + "Alarm"] = {
            "Description": f"The alarm of route {route.name}",
            "Value": {"Ref": route_id},
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler: CloudWatch alarms of every route from {source}",
        "Parameters": parameters,
        "Conditions": {"Notify": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


__all__ = ["Thresholds", "Watched", "forwarding_routes", "template", "watched"]
