"""Adversarial review of how a stage canary is measured (README "How a stage canary is
measured"): the baseline as the stage's access-log series less the ``/Canary`` ones,
against the stand-in (moto's CloudWatch, points put as the metric filters would), read
the way the controller reads them — each reading through ``Controller._read``, which
turns two cumulative readings into a ``Window`` and takes a reading "below the one
before" as a new origin — and fed to the real ``Analyzer``.

The two groups' filters publish apart (the README says so). With the default analysis
``interval`` of 10 s a reading very often falls between the stage group's minute and the
``/Canary`` group's; whichever comes first, the baseline of the next reading is lower
than the one before, the window is dropped as a "new origin", and the canary's requests
and 5xx of that window never reach the analysis. Each test fails on the code as it
landed and passes once every canary 5xx since the origin is counted."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from facade import aws_local
from facade.aws.cloudwatch import CloudWatchClient
from facade.exceptions import ConfigError, RoutingFileError
from facade.rollout.analysis import Analyzer
from facade.rollout.engine import RolloutState
from facade.rollout.function_canary import CanaryController, VersionMover, version_provider
from facade.rollout.plan import VersionCanary
from facade.rollout.samples import Result, Window
from facade.rollout.state import RolloutStore
from facade.routing.loader import load_table, parse_table

ROUTING = """\
version: 1
facade: {audit_log: audit.jsonl}
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9"}
  orders:
    kind: lambda
    url: "http://127.0.0.1:10"
    aws: {function: %(api)s, alias: live}
    canary:
      mechanism: stage
      from: live
      to: next
      weight: 5
      stage: {api: %(api)s, name: live, variable: alias}
      steps: [5, 50, 100]
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
default: monolith
"""


def _without_latency(canary: VersionCanary) -> VersionCanary:
    """moto computes no percentiles (as tests/rollout/test_canary_aws.py)."""
    analysis = dataclasses.replace(canary.plan.analysis, latency=None)
    return dataclasses.replace(canary, plan=dataclasses.replace(canary.plan, analysis=analysis))


class Stage:
    """A stage under canary on the stand-in: its access-log metrics put as its metric
    filters publish them, each metric when its own filter gets to it, and a controller
    reading them every analysis as ``strangler canary start`` does."""

    def __init__(self, endpoint: str, tmp_path: Path) -> None:
        self.api = f"orders-{uuid.uuid4().hex[:8]}"
        self.now = datetime.now(UTC).replace(second=0, microsecond=0)
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % {"api": self.api})
        table = load_table(routing)
        canary = table.backends["orders"].canary
        assert canary is not None
        self.canary = _without_latency(canary)
        started = (self.now - timedelta(minutes=10)).timestamp()
        cloudwatch = CloudWatchClient.connect(endpoint, aws_local.CREDENTIALS)
        self.provider = version_provider(table, self.canary, started, cloudwatch)
        self.provider.clock = lambda: self.now + timedelta(minutes=1)
        self.raw = boto3.client("cloudwatch", endpoint_url=endpoint, **aws_local.CREDENTIALS)
        self.seconds = 1_000_000.0
        self.controller = CanaryController(
            routing,
            self.canary.key,
            RolloutStore(tmp_path / "state", self.canary.key),
            self.provider,
            clock=lambda: self.seconds,
            say=lambda line: None,
            mover=VersionMover(routing, "orders", None),
        )
        self.state = RolloutState(self.canary.key, "live", "next", started)
        self.analyzer = Analyzer(self.canary.plan.analysis)
        self.windows: list[Window] = []

    def put(self, metric: str, value: float, minute: int) -> None:
        """One minute's point of ``metric`` (minute 0 is ``now``), as its filter publishes."""
        dimensions = [{"Name": "ApiName", "Value": self.api}, {"Name": "Stage", "Value": "live"}]
        self.raw.put_metric_data(
            Namespace="Strangler/ApiGateway",
            MetricData=[{"MetricName": metric, "Value": value, "Unit": "Count",
                         "Timestamp": self.now + timedelta(minutes=minute),
                         "Dimensions": dimensions}],
        )  # fmt: skip

    def stage_group(self, minute: int, requests: int, errors: int) -> None:
        """The stage's group's filters publish a minute (every request, the canary's too)."""
        self.put("Requests", requests, minute)
        self.put("5XXError", errors, minute)

    def canary_group(self, minute: int, requests: int, errors: int) -> None:
        """The ``/Canary`` group's filters publish the same minute's canary requests."""
        self.put("CanaryRequests", requests, minute)
        self.put("Canary5XXError", errors, minute)

    def analyse(self, clock: Callable[[], datetime] | None = None) -> None:
        """One analysis: the controller's reading, its window (if any) to the analyzer."""
        if clock is not None:
            self.provider.clock = clock
        self.seconds += 10  # the default analysis interval
        window, failure = self.controller._read(self.state)
        assert failure is None
        if window is not None:
            self.windows.append(window)
            self.analyzer.add(window)

    def settle(self) -> None:
        """A last analysis long after every filter has published everything."""
        self.analyse(lambda: self.now + timedelta(minutes=20))

    @property
    def canary_errors_seen(self) -> int:
        return sum(w.canary.errors for w in self.windows)

    @property
    def canary_requests_seen(self) -> int:
        return sum(w.canary.requests for w in self.windows)


def _at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture
def stage(aws_endpoints: aws_local.Endpoints, tmp_path: Path) -> Stage:
    return Stage(aws_endpoints.aws, tmp_path)


def test_a_failing_canary_minute_published_before_the_stages_is_never_analysed(
    stage: Stage,
) -> None:
    """The ``/Canary`` group's filters publish minute -1 — 50 canary requests, all 500 (an
    alias API Gateway may not invoke) — 10 s before the stage group's. The reading in
    between has the baseline at (stage to minute -2) less (canary to minute -1): lower than
    the reading before, so the controller takes it as a new origin and drops the window
    with the canary's 50 failures. The next window (the stage's minute -1 in) has no new
    canary request. The analysis never sees one canary error of the 50."""
    stage.analyse()  # the origin: nothing published yet
    stage.stage_group(-2, requests=1000, errors=0)  # minute -2: no canary yet
    stage.analyse()
    stage.canary_group(-1, requests=50, errors=50)  # minute -1, the /Canary group first
    stage.analyse()
    stage.stage_group(-1, requests=1050, errors=50)  # ... the stage's group 10 s later
    stage.analyse()
    stage.settle()
    assert stage.canary_requests_seen == 50, stage.windows
    assert stage.canary_errors_seen == 50, stage.windows
    assert stage.analyzer.errors.canary_bad == 50


def test_a_failing_canary_minute_published_after_the_stages_is_counted_as_the_baseline(
    stage: Stage,
) -> None:
    """The other order: the stage group's filters publish minute -1 first. The reading in
    between counts the canary's 50 requests and 50 failures as the *baseline's* (the stage
    less a canary minute not in yet); when the ``/Canary`` minute comes in, the baseline
    drops by 50, the window is dropped as a new origin — and the canary's failures never
    reach the analysis as the canary's."""
    stage.analyse()  # the origin
    stage.stage_group(-2, requests=1000, errors=0)
    stage.analyse()
    stage.stage_group(-1, requests=1050, errors=50)  # minute -1, the stage's group first
    stage.analyse()
    stage.canary_group(-1, requests=50, errors=50)  # ... the /Canary group 10 s later
    stage.analyse()
    stage.settle()
    assert stage.canary_errors_seen == 50, stage.windows
    assert stage.analyzer.errors.canary_bad == 50
    # and the baseline was never charged with them
    assert sum(w.baseline.errors for w in stage.windows) == 0, stage.windows


def test_a_canary_failing_every_request_is_never_judged_when_its_group_publishes_later(
    stage: Stage,
) -> None:
    """Ten minutes of a canary at 5 % answering every request 500, the ``/Canary``
    group's filters publishing each minute some seconds after the stage group's (an
    analysis every 10 s falls in between): every canary minute first lands in the
    baseline, then its window is dropped as a new origin. The analysis sees 10,000
    baseline requests with 500 errors and not one canary request — errors and the
    critical guard stay inconclusive ("no canary requests yet"), and at ``max_wait`` the
    rollout pauses with the canary still serving, instead of rolling back."""
    stage.now -= timedelta(minutes=12)
    stage.provider.start = stage.now - timedelta(minutes=1)
    stage.analyse(lambda: stage.now)  # the origin
    for minute in range(10):
        at = stage.now + timedelta(minutes=minute + 1)
        stage.stage_group(minute, requests=1000, errors=50)  # 950 baseline, 50 canary
        stage.analyse(_at(at))
        stage.canary_group(minute, requests=50, errors=50)  # the same minute, later
        stage.analyse(_at(at))
    stage.settle()
    step_canary = stage.canary_requests_seen
    verdicts = stage.analyzer.verdicts(step_canary, stage.analyzer.errors.baseline_n, 200)
    assert step_canary == 500, [(v.metric, v.result, v.reason) for v in verdicts]
    assert any(v.result is Result.FAIL for v in verdicts), [(v.metric, v.reason) for v in verdicts]


def test_a_canary_whose_5xx_filter_publishes_before_its_requests_filter_loses_those_5xx(
    stage: Stage,
) -> None:
    """Two filters of the ``/Canary`` group publish apart as well: minute -1's
    ``Canary5XXError`` is in, its ``CanaryRequests`` not yet. The provider clamps the
    baseline's errors to its requests (cumulatively, so nothing is lost) but not the
    canary's: that window has 5 canary errors and 0 canary requests, which the analysis
    clamps per window (``RatioTest.update``) — and the next window brings the requests
    without the errors. Half the canary's 5xx are gone for good."""
    stage.analyse()  # the origin
    stage.stage_group(-2, requests=1000, errors=5)
    stage.canary_group(-2, requests=100, errors=5)
    stage.analyse()
    stage.put("Canary5XXError", 5, -1)  # minute -1: the canary's 5xx filter first
    stage.analyse()
    stage.put("CanaryRequests", 100, -1)
    stage.stage_group(-1, requests=1000, errors=5)
    stage.analyse()
    stage.settle()
    assert stage.canary_errors_seen == 10
    assert stage.analyzer.errors.canary_bad == 10, stage.analyzer.errors


# -- routing.yaml: what CloudWatch Logs refuses and the file's validation lets through ----

HEAD = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders:
    kind: lambda
    handler: app:handler
    aws: {function: shop-orders, alias: live}
    canary:
      mechanism: stage
      from: blue
      to: green
      local: {blue: a:b, green: a:b}
      steps: [100]
"""
TAIL = """\
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
default: monolith
"""


def test_a_log_group_name_cloudwatch_logs_reserves_is_a_file_line_error() -> None:
    """CreateLogGroup (botocore's logs model, its documentation): "Log group names can't
    start with the string aws/". The pattern the validator checks lets it through, and the
    stack fails on AWS instead of the file at its line."""
    block = "      stage: {api: shop, log_group: aws/apigateway/shop}\n"
    with pytest.raises(RoutingFileError) as caught:
        parse_table(HEAD + block + TAIL, "routing.yaml")
    found = [str(p) for p in caught.value.problems]
    assert any("routing.yaml:14" in p and "log_group" in p for p in found), found


def test_an_empty_log_group_is_the_default_group_not_one_named_none() -> None:
    """``log_group:`` left empty (YAML null) — as one writes a key to take its default —
    is ``str(None)``: the stage logs to a group named ``None`` (a valid name), nothing
    says so, and two stages left empty share it. It should be the default group, or a
    file:line error."""
    block = "      stage: {api: shop, log_group: }\n"
    refused = ""
    try:
        table = parse_table(HEAD + block + TAIL, "routing.yaml")
    except (RoutingFileError, ConfigError) as exc:
        refused = str(exc)
    if refused:
        assert "log_group" in refused
        return
    canary = table.backends["orders"].canary
    assert canary is not None
    assert canary.stage is not None
    assert canary.stage.access_logs == "/strangler/shop/live"
