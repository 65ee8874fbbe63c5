"""The CloudWatch metric provider: each arm's counts from the metrics AWS itself keeps,
for a rollout on AWS (``analysis.provider: cloudwatch``) and for its Step Functions task.

One reading is **one** ``GetMetricData`` request (followed through its pages) with, per
arm, the sums of its requests and errors and its latency quantile (an extended statistic
such as ``p95``) since the provider's start, all in a single period that spans the whole
time: so the sums are cumulative and the quantile is over every request since the start
(CloudWatch cannot add up percentiles of several periods). Where each backend's metrics
are — a target group's ``AWS/ApplicationELB`` metrics, a Lambda alias's ``AWS/Lambda``
ones, a REST API stage's access-log metrics — is ``facade.aws.metrics``'s business;
``arms_for_listener`` finds them for every backend of a routing file. An arm whose
metrics also count requests of another (``ArmMetrics.minus``: a stage's log group gets
its canary's requests too) is read as the difference of the two sums.

What CloudWatch gives is not what the facade counts, and the analysis should know:

* a target group's metrics are the whole group's, whichever route sent the requests: the
  baseline of a route whose monolith group also serves other routes (and the default) is
  the monolith as a whole, not the route's share of it (``route`` is not a dimension);
* the load balancer publishes one data point a minute, a minute or more late: the newest
  requests are missing from a reading, so a step's ``min_time`` should be minutes;
* there is no histogram: ``ArmCounts.buckets`` is empty and ``quantile_seconds`` is the
  quantile of every request since the start (None while the arm has none).

A call that fails, is refused, or comes back incomplete is a ``ProviderError``.

**The stand-in (moto's CloudWatch) and what it does not do.** The tests put data points
into the ``AWS/ApplicationELB`` and ``AWS/Lambda`` namespaces (which AWS reserves for its
own services and would refuse), and into ``Strangler/ApiGateway`` as a stage's metric
filters would (moto's CloudWatch Logs runs no metric filter), and read them back through
this provider. moto evaluates no metric math (an ``Expression`` other than another
query's id answers no values), so the difference of an arm with ``minus`` is taken here.
moto does not compute extended statistics: asked for ``p95`` over data it answers HTTP
500 (asked over no data, it answers nothing), so the tests against it run with
``quantile=None`` and the quantile's path — with pagination and ``PartialData``, which
moto never returns — is tested on GetMetricData answers of AWS's documented shape
through botocore's ``Stubber``, which checks every request against the service's model.
moto neither rounds the start time down to the minute nor aligns periods to it as
CloudWatch does (the provider does both itself), checks no ``Period`` (a multiple of
60), and ignores the namespace of a query that names dimensions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from facade.aws.alb import DEFAULT_PREFIX, target_group_name
from facade.aws.client import ElbClient
from facade.aws.cloudwatch import CloudWatchClient, Series
from facade.aws.metrics import ArmMetrics, backend_metrics, extended_statistic
from facade.exceptions import AwsError, ConfigError
from facade.rollout.plan import RolloutPlan
from facade.rollout.providers import ProviderError
from facade.rollout.samples import ArmCounts
from facade.routing.model import BackendKind, RoutingTable

MINUTE = 60
LISTENER_ENV = "STRANGLER_ALB_LISTENER"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _minute(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigError(f"{moment.isoformat()}: give a time with its zone (UTC)")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


class CloudWatchProvider:
    """Cumulative counts per arm since ``start`` (rounded down to its minute, as
    CloudWatch rounds it); ``arms`` maps each backend to where its metrics are."""

    name = "cloudwatch"

    def __init__(
        self,
        client: CloudWatchClient,
        arms: Mapping[str, ArmMetrics],
        start: datetime,
        *,
        quantile: float | None = 0.95,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.arms = dict(arms)
        self.start = _minute(start)
        self.statistic = extended_statistic(quantile) if quantile is not None else None
        self.clock = clock

    def queries(self, baseline: str, canary: str, period: int) -> list[dict[str, Any]]:
        """The GetMetricData queries of one reading: per arm (``b``, ``c``) the sum of its
        requests, of each error metric, and its latency quantile; for an arm with
        ``minus``, the sums of those metrics too (``b_less_requests``…)."""
        found: list[dict[str, Any]] = []
        for key, backend in (("b", baseline), ("c", canary)):
            arm = self.arms.get(backend)
            if arm is None:
                raise ProviderError(f"cloudwatch: no metrics known for backend {backend!r}")
            wanted = _sums(arm, "")
            if self.statistic is not None:
                wanted.append((arm, "latency", arm.latency, self.statistic))
            if arm.minus is not None:
                wanted += _sums(arm.minus, "less_")
            for source, suffix, metric, stat in wanted:
                stat_of = {"Metric": source.metric(metric), "Period": period, "Stat": stat}
                found.append({"Id": f"{key}_{suffix}", "MetricStat": stat_of, "ReturnData": True})
        return found

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        """``route`` names no dimension: CloudWatch measures target groups and aliases."""
        end = self.clock().astimezone(UTC)
        settle = max(
            (self.arms[name].settle for name in (baseline, canary) if name in self.arms),
            default=0,
        )
        if settle:  # only the minutes every source has published: none of one yet
            end = _minute(end - timedelta(seconds=settle))
            if end <= self.start:
                nothing = ArmCounts(requests=0, errors=0, buckets=(), quantile_seconds=None)
                return nothing, nothing
        if end <= self.start:
            end = self.start + timedelta(seconds=MINUTE)
        # one period over the whole span: its start is the (whole-minute) start
        period = max(MINUTE, math.ceil((end - self.start).total_seconds() / MINUTE) * MINUTE)
        queries = self.queries(baseline, canary, period)
        try:
            series = self.client.metric_data(queries, self.start, end)
        except AwsError as exc:
            raise ProviderError(f"cloudwatch: {exc}") from exc
        return (
            self._counts(series, "b", self.arms[baseline]),
            self._counts(series, "c", self.arms[canary]),
        )

    def _counts(self, series: Mapping[str, Series], key: str, arm: ArmMetrics) -> ArmCounts:
        def total(suffix: str) -> float:
            found = series.get(f"{key}_{suffix}")
            return sum(found.values) if found else 0.0

        requests = total("requests")
        errors = sum(total(f"errors{i}") for i in range(len(arm.errors)))
        if arm.minus is not None:
            # subtracted here, not with metric math: the sums are what is subtracted, and
            # the stand-in evaluates no math. The two sources are published apart: for a
            # minute one may count requests the other does not yet (never below zero)
            requests = max(0.0, requests - total("less_requests"))
            less = sum(total(f"less_errors{i}") for i in range(len(arm.minus.errors)))
            errors = max(0.0, errors - less)
        errors = min(requests, errors)  # sums since the start: a late count is not lost
        quantile: float | None = None
        latency = series.get(f"{key}_latency")
        if latency is not None and latency.values:
            # one period spans the reading; should CloudWatch split it, the worst one counts
            quantile = max(latency.values) * arm.latency_unit
        return ArmCounts(
            requests=round(requests),
            errors=round(errors),
            buckets=(),
            quantile_seconds=quantile,
        )


def _sums(arm: ArmMetrics, prefix: str) -> list[tuple[ArmMetrics, str, str, str]]:
    """(metrics, query suffix, metric, statistic) of the sums of an arm's requests and
    errors."""
    found = [(arm, f"{prefix}requests", arm.requests, "Sum")]
    found += [(arm, f"{prefix}errors{i}", name, "Sum") for i, name in enumerate(arm.errors)]
    return found


def arms_for_listener(
    table: RoutingTable, elb: ElbClient, listener_arn: str, prefix: str
) -> dict[str, ArmMetrics]:
    """Where every backend of ``table`` shows in CloudWatch: a Lambda backend by its
    alias; any other by its target group (``aws.target_group_arn``, or the group named
    ``PREFIX-BACKEND`` that ``apply`` created) on the listener's load balancer. A backend
    whose target group does not exist is left out (reading it is then a provider error)."""
    groups = {
        name: str(b.aws["target_group_arn"])
        for name, b in table.backends.items()
        if b.aws.get("target_group_arn")
    }
    wanted = {
        target_group_name(prefix, name): name
        for name, b in table.backends.items()
        if name not in groups and b.kind is not BackendKind.LAMBDA
    }
    for group_name, arn in elb.target_groups_named(sorted(wanted)).items():
        groups[wanted[group_name]] = arn
    found: dict[str, ArmMetrics] = {}
    for name, backend in table.backends.items():
        try:
            found[name] = backend_metrics(backend, groups, listener_arn)
        except ConfigError:
            continue
    return found


def provider_since(
    table: RoutingTable,
    plan: RolloutPlan,
    started: float,
    elb: ElbClient,
    cloudwatch: CloudWatchClient,
    listener: str,
    prefix: str = DEFAULT_PREFIX,
) -> CloudWatchProvider:
    """The provider of a rollout that started at ``started`` (epoch seconds), reading the
    quantile of the plan's latency check (none without one)."""
    latency = plan.analysis.latency
    return CloudWatchProvider(
        cloudwatch,
        arms_for_listener(table, elb, listener, prefix),
        datetime.fromtimestamp(started, UTC),
        quantile=latency.quantile if latency is not None else None,
    )


def cloudwatch_provider(
    table: RoutingTable,
    plan: RolloutPlan,
    started: float,
    *,
    listener: str | None = None,
    use_aws: bool | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> CloudWatchProvider:
    """``analysis.provider: cloudwatch`` for ``strangler rollout``: the target groups of
    ``listener`` (default ``$STRANGLER_ALB_LISTENER``) on AWS, or on the file's local
    stand-in (``local.aws``) unless ``use_aws``; None: the stand-in when the file has one."""
    listener = listener or os.environ.get(LISTENER_ENV)
    if not listener:
        raise ConfigError(
            "analysis.provider cloudwatch measures the target groups of a load balancer: "
            f"name its listener (--listener ARN or ${LISTENER_ENV})"
        )
    if use_aws is None:
        use_aws = table.local.aws is None
    endpoint: str | None = None
    credentials: Mapping[str, Any] | None = None
    if not use_aws:
        from facade.aws_local import CREDENTIALS, stand_ins

        endpoint, credentials = stand_ins(table).endpoint, CREDENTIALS
    return provider_since(
        table,
        plan,
        started,
        ElbClient.connect(endpoint, credentials),
        CloudWatchClient.connect(endpoint, credentials),
        listener,
        prefix,
    )


__all__ = [
    "CloudWatchProvider",
    "arms_for_listener",
    "cloudwatch_provider",
    "provider_since",
    "utcnow",
]
