"""Adversarial review of the analysis' statistics against the README's claims, with the
real ``Analyzer`` (and the real controller) on generated data."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from facade.rollout.analysis import Analyzer
from facade.rollout.controller import EXIT_PROMOTED, Controller
from facade.rollout.plan import Analysis
from facade.rollout.samples import ArmCounts, Result, Window
from facade.rollout.state import RolloutStore
from facade.routing.loader import load_table
from tests.rollout.controller_kit import Clock, audit

ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100, orders: 0}
    rollout:
      to: orders
      steps: [1, {weight: 10, min_time: 3600}, 50, 100]
      step: {min_time: 60, min_sample: 200, max_wait: 7200}
      bake: 300
      interval: 10
      on_inconclusive: pause
      analysis:
        errors: {max_increase: 1}
        latency: false
        watch: 0          # one reading per analysis: the counts below are per reading
default: monolith
"""


class LoadDependentRegression:
    """1,000 requests per reading, split by the file's weight. The monolith fails 0.2 %
    of its requests; the canary 0.2 % too — until it gets 50 % of the traffic, where it
    fails 2 % (a pool, a cache or a downstream that does not scale: the regression a
    progressive rollout exists to catch). Counts are exact, not random."""

    name = "scripted"

    def __init__(self, routing: Path) -> None:
        self.routing = routing
        self.baseline = [0, 0]
        self.canary = [0, 0]
        self.canary_bad_milli = 0  # errors x 1000, to keep exact fractions

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        share = load_table(self.routing).route(route).share_of(canary)
        to_canary = 1000 * share // 1000
        self.baseline[0] += 1000 - to_canary
        self.baseline[1] = self.baseline[0] * 2 // 1000
        rate_milli = 20 if share >= 500 else 2  # errors per 1,000 canary requests
        self.canary[0] += to_canary
        self.canary_bad_milli += to_canary * rate_milli
        self.canary[1] = self.canary_bad_milli // 1000
        return (
            ArmCounts(self.baseline[0], self.baseline[1]),
            ArmCounts(self.canary[0], self.canary[1]),
        )


def test_a_regression_that_starts_at_a_higher_weight_is_not_promoted(tmp_path: Path) -> None:
    """The errors *pass* is an interval on the whole rollout's counts. After a long,
    healthy 10 % step (36,000 canary requests at 0.2 %), the 50 % step's canary fails 2 %
    of its 3,000 requests — +1.8 points, beyond the plan's 1-point margin, ten times
    the monolith's rate — and the step *passes* at its min_time: the old healthy
    requests dilute the new ones. At 100 % nothing is compared any more (the bake only
    watches the 5 % critical guard), so the regression is promoted."""
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    clock = Clock()
    controller = Controller(
        routing,
        "orders",
        RolloutStore(tmp_path / "state", "orders"),
        LoadDependentRegression(routing),
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
    )
    result = controller.run()
    passed_at_50 = [
        a["reason"]
        for a in audit(tmp_path)
        if a.get("action") == "rollout.analysis"
        and a.get("configured") == 50
        and a.get("decision") == "advance"
    ]
    assert result != EXIT_PROMOTED, f"a canary failing 2 % at 50 % was promoted: {passed_at_50}"


def _window(nb: int, eb: int, nc: int, ec: int) -> Window:
    return Window(ArmCounts(nb, eb), ArmCounts(nc, ec), 10.0)


def test_the_errors_pass_is_not_diluted_by_earlier_steps() -> None:
    """The same, on the Analyzer alone: its *pass* says "at most +0.x points" while the
    current step's own counts show +1.8 points over 3,000 canary requests."""
    analyzer = Analyzer(Analysis(latency=None))
    for step, share in ((0, 10), (1, 100)):
        analyzer.start_step(step)
        for index in range(360):
            # both arms at 0.2 %: the canary's error every 500 of its requests
            canary_errors = 1 if (index * share) % 500 + share > 500 - 1 else 0
            analyzer.add(_window(1000 - share, 2, share, canary_errors))
    analyzer.start_step(2)
    step_canary = step_baseline = 0
    for _ in range(6):  # one min_time of 60 s at 50 %
        analyzer.add(_window(500, 1, 500, 10))
        step_canary += 500
        step_baseline += 500
    errors = analyzer.verdicts(step_canary, step_baseline, 200)[0]
    assert errors.metric == "errors"
    assert errors.result is not Result.PASS, errors.reason


# -- claims that held --------------------------------------------------------------------

windows = st.lists(
    st.tuples(
        st.integers(0, 5000),  # baseline requests
        st.integers(0, 50),  # baseline errors
        st.integers(0, 500),  # canary requests
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(windows, st.lists(st.integers(0, 39), max_size=2), st.floats(0.001, 0.5))
def test_fewer_than_three_canary_errors_never_fail(
    data: list[tuple[int, int, int]], error_at: list[int], false_alarm: float
) -> None:
    """README: "Fewer than 3 canary errors never fail" — at any false_alarm, with the
    canary's (at most two) errors anywhere. Holds."""
    analyzer = Analyzer(Analysis(false_alarm=false_alarm, latency=None))
    step_canary = step_baseline = 0
    for index, (nb, eb, nc) in enumerate(data):
        ec = min(nc, error_at.count(index))
        analyzer.add(_window(nb, min(eb, nb), nc, ec))
        step_canary += nc
        step_baseline += nb
        for verdict in analyzer.verdicts(step_canary, step_baseline, 1):
            assert verdict.result is not Result.FAIL, verdict.reason
