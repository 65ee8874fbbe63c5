"""The anytime-valid statistics: the tests keep their false-alarm rate however often they
are looked at (exactly, per interval, and over simulated rollouts), the confidence
sequences cover the true rate, and the compact state round-trips."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facade.rollout.stats import (
    ODDS_GRID,
    RATIO_GRID,
    ExceedanceTest,
    RatioTest,
    difference_interval,
    log_bayes_factor,
    rate_interval,
)

FAST = settings(max_examples=25, deadline=None, derandomize=True)


def binomial_pmf(n: int, p: float) -> list[float]:
    return [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


def draw(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


@FAST
@given(
    n_a=st.integers(1, 25),
    n_b=st.integers(1, 25),
    p_a=st.floats(0.01, 0.99),
    worse_by=st.floats(0.0, 1.0),
)
def test_one_interval_of_the_ratio_test_has_mean_at_most_one_when_the_canary_is_no_worse(
    n_a: int, n_b: int, p_a: float, worse_by: float
) -> None:
    """Exact expectation over every outcome of one interval with Bernoulli requests: each
    grid point's likelihood ratio has mean <= 1 when p_canary <= p_baseline."""
    p_b = p_a * (1 - worse_by)
    pmf_a, pmf_b = binomial_pmf(n_a, p_a), binomial_pmf(n_b, p_b)
    means = [0.0] * len(RATIO_GRID)
    for y_a, w_a in enumerate(pmf_a):
        for y_b, w_b in enumerate(pmf_b):
            test = RatioTest()
            test.update(n_a, y_a, n_b, y_b)
            for j, log_lr in enumerate(test.log_lr):
                means[j] += w_a * w_b * math.exp(log_lr)
    assert max(means) <= 1 + 1e-9


def test_one_interval_of_the_ratio_test_has_mean_above_one_when_the_canary_is_worse() -> None:
    """The same exact expectation exceeds 1 for a worse canary: the test has power."""
    pmf_a, pmf_b = binomial_pmf(20, 0.05), binomial_pmf(20, 0.25)
    mean = 0.0
    for y_a, w_a in enumerate(pmf_a):
        for y_b, w_b in enumerate(pmf_b):
            test = RatioTest()
            test.update(20, y_a, 20, y_b)
            mean += w_a * w_b * test.e_value
    assert mean > 1.5


@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    rate=st.floats(0.002, 0.2),
    share=st.floats(0.01, 0.9),
    drifting=st.booleans(),
)
def test_healthy_rollouts_are_rejected_at_most_alpha_of_the_time(
    seed: int, rate: float, share: float, drifting: bool
) -> None:
    """Under H0 (same rate in both arms, random allocation and interval sizes, and with
    ``drifting`` a rate that changes every interval for both arms alike), the share of
    200 simulated rollouts rejected at any of their 60 looks stays within alpha plus
    Monte-Carlo slack."""
    rng = random.Random(seed)
    alpha, runs = 0.1, 200
    rejected = 0
    for _ in range(runs):
        test = RatioTest()
        for _ in range(60):
            n = rng.randint(0, 60)
            n_b = draw(rng, n, min(max(share * rng.uniform(0.5, 1.5), 0.0), 1.0))
            p = rate * rng.uniform(0.2, 3.0) if drifting else rate
            test.update(n - n_b, draw(rng, n - n_b, p), n_b, draw(rng, n_b, p))
            if test.rejects(alpha):
                rejected += 1
                break
    slack = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert rejected / runs <= alpha + slack


def test_a_five_point_regression_is_rejected_within_a_bounded_number_of_requests() -> None:
    """0.5 % vs 5.5 % at an even split: every one of 50 seeded rollouts rejects at the
    errors' budget (1 % / 3) before 2,000 canary requests."""
    for seed in range(50):
        rng = random.Random(seed)
        test = RatioTest()
        while not test.rejects(0.01 / 3):
            test.update(50, draw(rng, 50, 0.005), 50, draw(rng, 50, 0.055))
            assert test.canary_n < 2000


def test_a_better_canary_builds_no_evidence_against_itself() -> None:
    """A canary with half the baseline's errors drives the statistic towards zero."""
    rng = random.Random(7)
    test = RatioTest()
    for _ in range(200):
        test.update(100, draw(rng, 100, 0.02), 100, draw(rng, 100, 0.01))
    assert test.e_value < 0.01


def test_intervals_without_both_arms_or_without_bad_events_change_no_evidence() -> None:
    """A one-armed interval or one without a bad event moves no likelihood ratio; the
    counts still add up."""
    test = RatioTest()
    test.update(100, 3, 0, 0)
    test.update(0, 0, 50, 4)
    test.update(80, 0, 20, 0)
    assert test.log_lr == [0.0] * len(RATIO_GRID)
    assert (test.baseline_n, test.baseline_bad, test.canary_n, test.canary_bad) == (180, 3, 70, 4)


@FAST
@given(
    windows=st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 50), st.integers(0, 500), st.integers(0, 50)),
        max_size=40,
    )
)
def test_the_ratio_test_state_round_trips_through_json_to_identical_decisions(
    windows: list[tuple[int, int, int, int]],
) -> None:
    """to_dict → JSON → from_dict, then the same further data: bit-identical state."""
    half = len(windows) // 2
    straight = RatioTest()
    for w in windows:
        straight.update(*w)
    resumed = RatioTest()
    for w in windows[:half]:
        resumed.update(*w)
    resumed = RatioTest.from_dict(json.loads(json.dumps(resumed.to_dict())))
    for w in windows[half:]:
        resumed.update(*w)
    assert resumed.to_dict() == straight.to_dict()
    assert resumed.rejects(0.01) == straight.rejects(0.01)


def test_the_ratio_test_state_does_not_grow_with_the_rollout() -> None:
    """Ten thousand intervals later the state holds as many numbers as after one."""
    rng = random.Random(3)
    test = RatioTest()
    test.update(100, 1, 10, 1)
    size = len(json.dumps(test.to_dict()))
    for _ in range(10_000):
        test.update(100, draw(rng, 100, 0.01), 10, draw(rng, 10, 0.01))
    assert len(json.dumps(test.to_dict())) <= size + 60  # the counts gain digits


@FAST
@given(n=st.integers(1, 40), level=st.floats(0.01, 0.5), below=st.floats(0.0, 1.0))
def test_the_exceedance_test_has_mean_at_most_one_at_or_below_its_level(
    n: int, level: float, below: float
) -> None:
    """Exact expectation over one batch of n requests at a rate p <= level."""
    p = level * (1 - below)
    means = [0.0] * len(ODDS_GRID)
    for bad, w in enumerate(binomial_pmf(n, p)):
        test = ExceedanceTest(level)
        test.update(n, bad)
        for j, log_lr in enumerate(test.log_lr):
            means[j] += w * math.exp(log_lr)
    assert max(means) <= 1 + 1e-9


def test_the_exceedance_test_rejects_a_rate_far_above_its_level_quickly() -> None:
    """Half of 20 requests failing proves a rate above 5 % at alpha = 0.1 %."""
    test = ExceedanceTest(0.05)
    test.update(20, 10)
    assert test.rejects(0.001)
    quiet = ExceedanceTest(0.05)
    quiet.update(20, 1)
    assert not quiet.rejects(0.1)


def test_the_exceedance_test_round_trips() -> None:
    test = ExceedanceTest(0.05)
    test.update(30, 4)
    again = ExceedanceTest.from_dict(json.loads(json.dumps(test.to_dict())))
    assert again == test


@settings(max_examples=5, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), p=st.floats(0.001, 0.5))
def test_the_confidence_sequence_covers_the_true_rate_at_every_look(seed: int, p: float) -> None:
    """Of 200 sequences of 1,500 Bernoulli(p) requests, each looked at every 25, at most
    alpha (+ slack) ever leave p outside the interval."""
    rng = random.Random(seed)
    alpha, runs = 0.1, 200
    missed = 0
    for _ in range(runs):
        bad = n = 0
        for _ in range(60):
            n += 25
            bad += draw(rng, 25, p)
            low, high = rate_interval(bad, n, alpha)
            if not low <= p <= high:
                missed += 1
                break
    assert missed / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_the_confidence_sequence_narrows_with_data_and_contains_the_estimate() -> None:
    low, high = rate_interval(100, 10_000, 0.01)
    assert low < 0.01 < high
    assert high - low < 0.01
    wide = rate_interval(1, 100, 0.01)
    assert wide[1] - wide[0] > high - low


@pytest.mark.parametrize(("bad", "n"), [(0, 0), (0, 10), (10, 10), (3, 7)])
def test_the_confidence_sequence_at_the_edges(bad: int, n: int) -> None:
    """No data: [0, 1]; no bad event: from 0; all bad: up to 1; the bounds are where the
    Bayes factor reaches 1/alpha."""
    low, high = rate_interval(bad, n, 0.05)
    assert 0.0 <= low <= high <= 1.0
    if n == 0:
        assert (low, high) == (0.0, 1.0)
        return
    assert (low == 0.0) == (bad == 0)
    assert (high == 1.0) == (bad == n)
    limit = math.log(1 / 0.05)
    for bound in (low, high):
        if 0.0 < bound < 1.0:
            assert log_bayes_factor(bad, n, bound) == pytest.approx(limit, abs=1e-6)


def test_the_difference_interval_combines_both_rates_at_half_the_level() -> None:
    """canary - baseline: from the canary's lower minus the baseline's upper bound, both
    at alpha/2, to the other way round; it brackets the observed difference."""
    low, high = difference_interval((30, 1000), (10, 1000), 0.01)
    c_low, c_high = rate_interval(30, 1000, 0.005)
    b_low, b_high = rate_interval(10, 1000, 0.005)
    assert (low, high) == (c_low - b_high, c_high - b_low)
    assert low < 0.02 < high
