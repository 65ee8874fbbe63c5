"""The analysis turns windows of counts into verdicts: low traffic and sparse errors are
inconclusive, never a fail; a real regression fails within a bounded number of requests;
a step goes pass → inconclusive → fail as its data says; latency is tested on a threshold
frozen before the data it counts; CloudWatch's quantiles never fail; the critical guard
fires on a canary failing outright; the state is compact and resumes identically."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facade.rollout.analysis import MIN_BAD, Analyzer, quantile
from facade.rollout.plan import Analysis, CriticalGuard, ErrorCheck, LatencyCheck, Provider
from facade.rollout.samples import LATENCY_BOUNDS, ArmCounts, Result, Verdict, Window

FAST = settings(max_examples=30, deadline=None, derandomize=True)


def lognormal_cdf(median: float, sigma: float = 0.5) -> list[float]:
    out = []
    for bound in LATENCY_BOUNDS:
        if math.isinf(bound):
            out.append(1.0)
        else:
            out.append(0.5 * (1 + math.erf(math.log(bound / median) / (sigma * math.sqrt(2)))))
    return out


def arm(n: int, errors: int = 0, cdf: list[float] | None = None) -> ArmCounts:
    """``n`` requests, ``errors`` failed; the histogram follows ``cdf`` (rounded)."""
    if cdf is None:
        return ArmCounts(n, errors, LATENCY_BOUNDS, ())
    buckets = [min(n, round(n * c)) for c in cdf]
    buckets[-1] = n
    return ArmCounts(n, errors, LATENCY_BOUNDS, tuple(buckets))


def sampled_arm(rng: random.Random, n: int, p: float, cdf: list[float]) -> ArmCounts:
    errors = sum(rng.random() < p for _ in range(n))
    cumulative = [0] * len(cdf)
    for _ in range(n):
        u = rng.random()
        first = next(i for i, c in enumerate(cdf) if u <= c)
        for i in range(first, len(cdf)):
            cumulative[i] += 1
    return ArmCounts(n, errors, LATENCY_BOUNDS, tuple(cumulative))


def by_metric(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.metric: v for v in verdicts}


FAST_CDF = lognormal_cdf(0.060)
SLOW_CDF = lognormal_cdf(0.090)  # the same service, 50 % slower


def test_no_requests_at_all_is_inconclusive_for_every_metric() -> None:
    analyzer = Analyzer(Analysis())
    for verdict in analyzer.verdicts(0, 0, 200):
        assert verdict.result is Result.INCONCLUSIVE, verdict
    analyzer.add(Window(arm(0), arm(0), 10))
    analyzer.add(Window(arm(500, 2, FAST_CDF), arm(0), 10))
    for verdict in analyzer.verdicts(0, 500, 200):
        assert verdict.result is Result.INCONCLUSIVE, verdict


def test_a_short_step_says_how_many_canary_requests_are_missing() -> None:
    analyzer = Analyzer(Analysis())
    analyzer.add(Window(arm(1000, 5), arm(37, 0), 10))
    errors = by_metric(analyzer.verdicts(37, 1000, 200))["errors"]
    assert errors.result is Result.INCONCLUSIVE
    assert errors.reason.startswith("not enough evidence yet: 37 canary requests of 200 needed")
    assert (errors.canary_n, errors.baseline_n, errors.unit) == (37, 1000, "points")


@FAST
@given(
    windows=st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 40), st.integers(0, 60)),
        min_size=1,
        max_size=30,
    ),
    canary_errors=st.lists(st.integers(0, 29), max_size=MIN_BAD - 1),
    false_alarm=st.floats(0.001, 0.3),
    min_requests=st.integers(1, 50),
)
def test_sparse_canary_errors_never_fail(
    windows: list[tuple[int, int, int]],
    canary_errors: list[int],
    false_alarm: float,
    min_requests: int,
) -> None:
    """Whatever the traffic, split, budget and guard, a canary with at most two errors
    over the whole rollout is never failed by any metric."""
    analyzer = Analyzer(
        Analysis(false_alarm=false_alarm, critical=CriticalGuard(5.0, min_requests))
    )
    step_canary = step_baseline = 0
    for index, (n_base, base_errors, n_canary) in enumerate(windows):
        errors = min(canary_errors.count(index), n_canary)
        analyzer.add(Window(arm(n_base, min(base_errors, n_base)), arm(n_canary, errors), 10))
        step_canary += n_canary
        step_baseline += n_base
        for verdict in analyzer.verdicts(step_canary, step_baseline, 200):
            assert verdict.result is not Result.FAIL, verdict


def test_a_five_point_regression_fails_within_a_bounded_number_of_requests() -> None:
    """0.5 % vs 5.5 % at a 10 % canary share, 100 requests a window: each of 20 seeded
    rollouts fails on errors before 3,000 canary requests, and says why."""
    for seed in range(20):
        rng = random.Random(seed)
        analyzer = Analyzer(Analysis(latency=None))
        step_canary = step_baseline = 0
        while True:
            n_canary = sum(rng.random() < 0.1 for _ in range(100))
            base = arm(100 - n_canary, sum(rng.random() < 0.005 for _ in range(100 - n_canary)))
            canary = arm(n_canary, sum(rng.random() < 0.055 for _ in range(n_canary)))
            analyzer.add(Window(base, canary, 10))
            step_canary += canary.requests
            step_baseline += base.requests
            errors = by_metric(analyzer.verdicts(step_canary, step_baseline, 200))["errors"]
            if errors.result is Result.FAIL:
                break
            assert step_canary < 3000
        assert "regression at 0.5 % false-alarm rate" in errors.reason
        assert errors.estimate is not None
        assert errors.estimate > 0
        assert errors.details["e_value"] >= errors.details["e_needed"]


def test_a_step_goes_pass_then_inconclusive_then_fail_as_its_data_says() -> None:
    """A healthy step passes; the next step is inconclusive until its canary has enough
    requests; the canary then regresses, and the analysis fails it."""
    analyzer = Analyzer(Analysis(latency=None))
    results: list[Result] = []
    step_canary = 0
    for _ in range(10):  # step 1: 0.5 % on both arms, 1,000 requests each per window
        analyzer.add(Window(arm(1000, 5), arm(1000, 5), 10))
        step_canary += 1000
        results.append(by_metric(analyzer.verdicts(step_canary, step_canary, 200))["errors"].result)
    assert results[-1] is Result.PASS
    step_canary = 0
    analyzer.start_step(1)
    for _ in range(40):  # step 2: the canary fails 20 % of a trickle of requests
        analyzer.add(Window(arm(20, 0), arm(20, 4), 10))
        step_canary += 20
        verdict = by_metric(analyzer.verdicts(step_canary, step_canary, 200))["errors"]
        results.append(verdict.result)
        if verdict.result is Result.FAIL:
            break
    changes = [r for i, r in enumerate(results) if i == 0 or r is not results[i - 1]]
    assert changes[-3:] == [Result.PASS, Result.INCONCLUSIVE, Result.FAIL]
    assert "interval [" in verdict.reason


def test_a_small_increase_within_the_margin_passes_and_a_large_one_cannot() -> None:
    """With plenty of data, +0.2 points passes a 1-point margin; +1.5 points never
    passes (it fails)."""
    small = Analyzer(Analysis(latency=None, errors=ErrorCheck(max_increase=1.0)))
    large = Analyzer(Analysis(latency=None, errors=ErrorCheck(max_increase=1.0)))
    for _ in range(20):
        small.add(Window(arm(1000, 5), arm(1000, 7), 10))
        large.add(Window(arm(1000, 5), arm(1000, 20), 10))
    assert by_metric(small.verdicts(20_000, 20_000, 200))["errors"].result is Result.PASS
    assert by_metric(large.verdicts(20_000, 20_000, 200))["errors"].result is Result.FAIL


def test_the_latency_threshold_is_frozen_from_the_baseline_before_it_is_used() -> None:
    """No threshold until the baseline has 1,000 requests (p95); once set it does not
    move, even when the baseline's later requests are slower."""
    analyzer = Analyzer(Analysis())
    analyzer.add(Window(arm(900, 0, FAST_CDF), arm(10, 0, FAST_CDF), 10))
    latency = by_metric(analyzer.verdicts(10, 900, 200))["latency"]
    assert latency.result is Result.INCONCLUSIVE
    assert "no threshold yet" in latency.reason
    assert "after 1000 of its requests, 900 so far" in latency.reason
    analyzer.add(Window(arm(150, 0, FAST_CDF), arm(10, 0, FAST_CDF), 10))
    frozen = analyzer.latency.threshold
    assert frozen is not None
    assert frozen in LATENCY_BOUNDS
    assert analyzer.latency.pass_threshold is not None
    assert analyzer.latency.pass_threshold >= frozen
    for _ in range(20):
        analyzer.add(Window(arm(1000, 0, lognormal_cdf(0.5)), arm(10, 0, FAST_CDF), 10))
    assert analyzer.latency.threshold == frozen
    assert analyzer.latency.test.baseline_n == 20 * 1000  # only windows after the freeze


def test_a_fifty_percent_slower_canary_fails_on_latency_and_a_healthy_one_passes() -> None:
    """Seeded requests, 60 ms vs 90 ms median, 100 a window per arm: the slow canary fails
    on latency with both quantiles reported in ms; the same data with an unchanged canary
    passes."""
    rng = random.Random(11)
    slow, same = Analyzer(Analysis()), Analyzer(Analysis())
    slow_latency = same_latency = None
    for window in range(1, 100):
        base = sampled_arm(rng, 100, 0.0, FAST_CDF)
        slow.add(Window(base, sampled_arm(rng, 100, 0.0, SLOW_CDF), 10))
        same.add(Window(base, sampled_arm(rng, 100, 0.0, FAST_CDF), 10))
        if slow_latency is None or slow_latency.result is not Result.FAIL:
            slow_latency = by_metric(slow.verdicts(100 * window, 100 * window, 200))["latency"]
        same_latency = by_metric(same.verdicts(100 * window, 100 * window, 200))["latency"]
        assert same_latency.result is not Result.FAIL
    assert slow_latency is not None
    assert same_latency is not None
    assert slow_latency.result is Result.FAIL
    assert slow_latency.unit == "ms"
    assert slow_latency.estimate is not None
    assert slow_latency.estimate > slow_latency.details["baseline_ms"]
    assert "threshold_ms" in slow_latency.details
    assert same_latency.result is Result.PASS


def test_without_a_histogram_latency_compares_quantiles_and_never_fails() -> None:
    """CloudWatch's quantiles: a canary ten times slower is inconclusive, not a fail, and
    latency takes no share of the budget; within the margin it passes."""
    settings_ = Analysis(provider=Provider.CLOUDWATCH, latency=LatencyCheck(0.95, 25))
    analyzer = Analyzer(settings_)
    assert analyzer.alpha("errors") == settings_.false_alarm / 2
    assert analyzer.alpha("latency") == 0.0
    slow = ArmCounts(500, 0, LATENCY_BOUNDS, (), quantile_seconds=1.0)
    fast = ArmCounts(5000, 0, LATENCY_BOUNDS, (), quantile_seconds=0.1)
    for _ in range(50):
        analyzer.add(Window(fast, slow, 60))
    latency = by_metric(analyzer.verdicts(25_000, 250_000, 200))["latency"]
    assert latency.result is Result.INCONCLUSIVE
    assert "never rolls back" in latency.reason
    assert latency.estimate == 1000.0
    assert latency.details["baseline_ms"] == 100.0
    close = ArmCounts(500, 0, LATENCY_BOUNDS, (), quantile_seconds=0.11)
    analyzer.add(Window(fast, close, 60))
    assert by_metric(analyzer.verdicts(25_500, 255_000, 200))["latency"].result is Result.PASS


def test_the_budget_is_split_between_the_metrics_that_can_fail() -> None:
    with_latency = Analyzer(Analysis(false_alarm=0.03))
    assert with_latency.alpha("errors") == with_latency.alpha("latency") == 0.01
    assert with_latency.alpha("critical") == 0.005  # the first step's half of its share
    with_latency.start_step(1)
    assert with_latency.alpha("critical") == 0.0025
    without = Analyzer(Analysis(false_alarm=0.02, latency=None))
    assert without.alpha("errors") == 0.01


def test_the_critical_guard_fails_a_canary_failing_outright_at_its_minimum() -> None:
    """Half of the first 20 canary requests failing: the guard fails at once."""
    analyzer = Analyzer(Analysis(critical=CriticalGuard(errors=5.0, min_requests=20)))
    analyzer.add(Window(arm(1000, 5), arm(19, 10), 10))
    assert by_metric(analyzer.verdicts(19, 1000, 200))["critical"].result is Result.INCONCLUSIVE
    analyzer.add(Window(arm(100, 0), arm(1, 1), 10))
    critical = by_metric(analyzer.verdicts(20, 1100, 200))["critical"]
    assert critical.result is Result.FAIL
    assert critical.reason.startswith("11 of 20 canary requests failed in this step")


def test_the_critical_guard_counts_the_current_step_only() -> None:
    """Errors of a previous step do not count: when the step's canary count passed to
    ``verdicts`` drops, the guard keeps only the latest window."""
    analyzer = Analyzer(Analysis(critical=CriticalGuard(errors=5.0, min_requests=20)))
    analyzer.add(Window(arm(1000, 0), arm(100, 4), 10))
    assert by_metric(analyzer.verdicts(100, 1000, 200))["critical"].canary_n == 100
    analyzer.add(Window(arm(1000, 0), arm(30, 0), 10))
    critical = by_metric(analyzer.verdicts(30, 1000, 200))["critical"]  # a new step
    assert (critical.canary_n, critical.details["errors"], critical.details["step"]) == (30, 0, 1)
    assert critical.result is Result.PASS


@FAST
@given(
    windows=st.lists(
        st.tuples(
            st.integers(0, 3000),
            st.integers(0, 30),
            st.integers(0, 300),
            st.integers(0, 30),
            st.sampled_from([FAST_CDF, SLOW_CDF]),
        ),
        max_size=25,
    ),
    cut=st.integers(0, 25),
)
def test_a_resumed_analysis_gives_identical_verdicts(
    windows: list[tuple[int, int, int, int, list[float]]], cut: int
) -> None:
    """to_dict → JSON → from_dict at any point, then the same windows: the same verdicts
    at every later look as an analysis that never stopped (and they are strict JSON)."""
    plan = Analysis()
    straight, resumed = Analyzer(plan), Analyzer(plan)
    step_canary = step_baseline = 0
    for index, (n_b, e_b, n_c, e_c, cdf) in enumerate(windows):
        if index == cut:
            resumed = Analyzer.from_dict(plan, json.loads(json.dumps(resumed.to_dict())))
        window = Window(arm(n_b, min(e_b, n_b), FAST_CDF), arm(n_c, min(e_c, n_c), cdf), 10)
        step_canary += n_c
        step_baseline += n_b
        straight.add(window)
        resumed.add(window)
        verdicts = straight.verdicts(step_canary, step_baseline, 200)
        assert resumed.verdicts(step_canary, step_baseline, 200) == verdicts
        json.dumps([v.as_dict() for v in verdicts], allow_nan=False)  # strict JSON


def test_the_state_stays_small_however_long_the_rollout_runs() -> None:
    """A day of 10-second windows: the JSON state stays under 4 kB and is strict JSON."""
    rng = random.Random(5)
    analyzer = Analyzer(Analysis())
    for _ in range(8640):
        analyzer.add(Window(arm(rng.randint(0, 50), 0, FAST_CDF), arm(rng.randint(0, 5)), 10))
    text = json.dumps(analyzer.to_dict(), allow_nan=False)
    assert len(text) < 4000


def test_quantile_interpolates_within_a_bucket_like_histogram_quantile() -> None:
    bounds = (0.1, 0.2, math.inf)
    assert quantile(bounds, (50, 100, 100), 0.75) == pytest.approx(0.15)
    assert quantile(bounds, (0, 0, 10), 0.5) == 0.2  # beyond the last finite bound
    assert math.isnan(quantile(bounds, (0, 0, 0), 0.5))


def test_the_controller_s_default_factory_builds_and_resumes_this_analysis() -> None:
    """The controller's seam (``default_analyzer``) gives this analyzer, new or resumed
    from its saved state, and the resumed one judges the same."""
    from facade.rollout.controller import default_analyzer

    plan = Analysis()
    fresh = default_analyzer(plan, None)
    assert isinstance(fresh, Analyzer)
    fresh.add(Window(arm(1000, 5, FAST_CDF), arm(300, 9, SLOW_CDF), 10))
    resumed = default_analyzer(plan, json.loads(json.dumps(fresh.to_dict())))
    assert isinstance(resumed, Analyzer)
    assert resumed.verdicts(300, 1000, 200) == fresh.verdicts(300, 1000, 200)
