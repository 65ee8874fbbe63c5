"""Anytime-valid statistics for canary analysis: tests and intervals that may be looked
at after every interval, for as long as the rollout runs, without inflating their error.

A fixed-sample test checked every ten seconds rejects a healthy canary sooner or later;
every statistic here is built on a *test supermartingale* instead — a non-negative
process whose expectation never grows while the null hypothesis holds — and Ville's
inequality bounds the chance that it *ever* reaches ``1/alpha`` by ``alpha``. Looking often,
stopping early and changing the traffic split mid-way are all free.

``RatioTest`` — is the canary's bad-event rate above the baseline's?
    After Lindon, Sanden and Shirikian, "Rapid regression detection in software
    deployments through sequential testing" (KDD 2022). In each interval *k* the arms
    answer ``n_A`` (baseline) and ``n_B`` (canary) requests, and ``e = y_A + y_B`` of
    them are bad. Given ``e``, the canary's ``y_B`` is modelled as
    ``Binomial(e, rho(θ))`` with ``rho(θ) = n_B·θ / (n_A + n_B·θ)``, ``θ`` the ratio of the
    canary's rate to the baseline's. The observed ``n`` are used, not the configured
    weights, so sticky assignment drifting the split, or a weight the load balancer
    applies approximately, changes nothing. The statistic is the mixture over a fixed
    grid of ``θ > 1`` (log-spaced, equal weights) of the products of per-interval
    likelihood ratios against ``θ = 1``; it rejects "the canary is no worse" when it
    reaches ``1/alpha``. The state is one log-likelihood ratio per grid point plus the
    cumulative counts: its size does not grow with the length of the rollout.

    *What is proven, and under what assumptions.* Within an interval, each request of an
    arm is bad independently with that arm's probability for the interval (``p_A,k``,
    ``p_B,k``), given the requests' allocation — which may depend on everything before
    the interval (weights set by earlier decisions, stickiness). The null hypothesis is
    ``p_B,k ≤ p_A,k`` in every interval; the rates may change from interval to interval
    (a daily cycle, an incident hitting both arms). Under it the statistic is a test
    supermartingale, so a healthy canary is rejected with probability at most ``alpha``
    over the whole rollout. Proof: given ``e``, the bad requests are a uniformly random
    ``e``-subset of the ``n_A + n_B`` requests when ``p_A = p_B`` — ``y_B`` is
    hypergeometric — and Fisher's noncentral hypergeometric with odds ratio below 1
    when ``p_B < p_A``. Each factor of the statistic is ``c^{y_B}`` times a constant,
    ``c > 1``: increasing in ``y_B`` (so its mean is largest at equal rates, by the
    monotone likelihood ratio of that family) and convex in ``y_B`` (so its mean under
    sampling without replacement is at most its mean under the binomial, Hoeffding
    1963 Theorem 4, which is exactly 1). The Poisson model of the paper is therefore not
    needed; the binomial factors are conservative for Bernoulli requests.
    *Not covered:* errors that are correlated between requests of the same arm — one
    user stuck to the canary retrying a failing call, a burst of failures from one bad
    instance — make the effective sample smaller than the count of requests. The
    guarantee is per bad-event *definition*: the event must be fixed before the data it
    is counted on (see ``facade.rollout.analysis`` for the latency threshold).

``rate_interval`` — a confidence sequence for one Bernoulli rate.
    The set of ``p0`` whose beta-binomial mixture Bayes factor (a Beta(½, ½) prior
    against the point ``p0``) is below ``1/alpha``. For independent requests with one
    constant rate ``p``, the factor at ``p0 = p`` is a martingale with mean 1, so the
    interval misses ``p`` at *any* time with probability at most ``alpha``. Unlike the test,
    this assumes the rate is constant over the counts it is given; with a drifting rate
    it covers nothing in particular. Two intervals at ``alpha/2`` each bound a difference of
    rates with ``1 - alpha`` (``difference_interval``).

``ExceedanceTest`` — is one arm's rate above a fixed level ``c``?
    A mixture over a grid of rates above ``c`` of the binomial likelihood ratios against
    ``c``; under ``p ≤ c`` (with independent requests, the rate may vary below ``c``)
    each ratio is a supermartingale by the monotone likelihood ratio, and so is the
    mixture. Used by the critical guard, on one step's canary requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# θ > 1: the canary's rate over the baseline's, from 15 % worse to 64 times worse
RATIO_GRID: tuple[float, ...] = tuple(
    math.exp(math.log(1.15) + i * (math.log(64.0) - math.log(1.15)) / 15) for i in range(16)
)
# odds(p1) / odds(c) for the rates above a level c
ODDS_GRID: tuple[float, ...] = tuple(
    math.exp(math.log(1.5) + i * (math.log(500.0) - math.log(1.5)) / 11) for i in range(12)
)
PRIOR_A = 0.5  # Beta(½, ½): the mixing prior of the confidence sequences
PRIOR_B = 0.5


def _log_mean_exp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def _e_value(log_e: float) -> float:
    return math.exp(min(log_e, 700.0))


@dataclass
class RatioTest:
    """The sequential test of "canary rate ≤ baseline rate" over a rollout (see the
    module docstring). ``update`` takes one interval's increments of both arms."""

    log_lr: list[float] = field(default_factory=lambda: [0.0] * len(RATIO_GRID))
    baseline_n: int = 0
    baseline_bad: int = 0
    canary_n: int = 0
    canary_bad: int = 0

    def update(self, baseline_n: int, baseline_bad: int, canary_n: int, canary_bad: int) -> None:
        baseline_bad = min(max(baseline_bad, 0), max(baseline_n, 0))
        canary_bad = min(max(canary_bad, 0), max(canary_n, 0))
        self.baseline_n += max(baseline_n, 0)
        self.baseline_bad += baseline_bad
        self.canary_n += max(canary_n, 0)
        self.canary_bad += canary_bad
        bad = baseline_bad + canary_bad
        if bad == 0 or baseline_n <= 0 or canary_n <= 0:
            return  # the split of no bad event, or of a one-armed interval, says nothing
        good = bad - canary_bad
        rho0 = canary_n / (baseline_n + canary_n)
        for j, theta in enumerate(RATIO_GRID):
            rho = canary_n * theta / (baseline_n + canary_n * theta)
            self.log_lr[j] += canary_bad * math.log(rho / rho0) + good * math.log(
                (1 - rho) / (1 - rho0)
            )

    @property
    def log_e_value(self) -> float:
        """The log of the mixture likelihood ratio: the evidence that the canary is worse."""
        return _log_mean_exp(self.log_lr)

    @property
    def e_value(self) -> float:
        return _e_value(self.log_e_value)

    def rejects(self, alpha: float) -> bool:
        return self.log_e_value >= math.log(1 / alpha)

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_lr": list(self.log_lr),
            "baseline": [self.baseline_n, self.baseline_bad],
            "canary": [self.canary_n, self.canary_bad],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RatioTest:
        log_lr = [float(v) for v in data["log_lr"]]
        if len(log_lr) != len(RATIO_GRID):
            raise ValueError(f"a ratio test has {len(RATIO_GRID)} grid points, not {len(log_lr)}")
        return cls(log_lr, *map(int, data["baseline"]), *map(int, data["canary"]))


@dataclass
class ExceedanceTest:
    """The sequential test of "this arm's rate ≤ ``level``" (see the module docstring)."""

    level: float
    log_lr: list[float] = field(default_factory=lambda: [0.0] * len(ODDS_GRID))
    n: int = 0
    bad: int = 0

    def _alternatives(self) -> list[float]:
        odds = self.level / (1 - self.level)
        return [odds * r / (1 + odds * r) for r in ODDS_GRID]

    def update(self, n: int, bad: int) -> None:
        n = max(n, 0)
        bad = min(max(bad, 0), n)
        self.n += n
        self.bad += bad
        if n == 0 or not 0 < self.level < 1:
            return
        good = n - bad
        for j, p1 in enumerate(self._alternatives()):
            self.log_lr[j] += bad * math.log(p1 / self.level) + good * math.log(
                (1 - p1) / (1 - self.level)
            )

    @property
    def log_e_value(self) -> float:
        if self.level <= 0:  # "any bad event": one proves the rate above 0
            return math.inf if self.bad else 0.0
        if self.level >= 1:
            return 0.0
        return _log_mean_exp(self.log_lr)

    @property
    def e_value(self) -> float:
        return _e_value(self.log_e_value)

    def rejects(self, alpha: float) -> bool:
        return self.log_e_value >= math.log(1 / alpha)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "log_lr": list(self.log_lr), "n": self.n, "bad": self.bad}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExceedanceTest:
        log_lr = [float(v) for v in data["log_lr"]]
        if len(log_lr) != len(ODDS_GRID):
            raise ValueError(f"an exceedance test has {len(ODDS_GRID)} grid points")
        return cls(float(data["level"]), log_lr, int(data["n"]), int(data["bad"]))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_bayes_factor(bad: int, n: int, p0: float) -> float:
    """The log of the beta-binomial mixture's Bayes factor against the rate ``p0``."""
    good = n - bad
    if (p0 <= 0 and bad > 0) or (p0 >= 1 and good > 0):
        return math.inf
    marginal = _log_beta(PRIOR_A + bad, PRIOR_B + good) - _log_beta(PRIOR_A, PRIOR_B)
    likelihood = (bad * math.log(p0) if bad else 0.0) + (good * math.log1p(-p0) if good else 0.0)
    return marginal - likelihood


def rate_interval(bad: int, n: int, alpha: float) -> tuple[float, float]:
    """The confidence sequence for a Bernoulli rate after ``bad`` of ``n``: an interval
    that contains the true rate at every ``n`` at once with probability ``≥ 1 - alpha``."""
    if n <= 0:
        return (0.0, 1.0)
    bad = min(max(bad, 0), n)
    good = n - bad
    # the factor is marginal / likelihood(p); the marginal does not depend on p
    limit = math.log(1 / alpha) - (
        _log_beta(PRIOR_A + bad, PRIOR_B + good) - _log_beta(PRIOR_A, PRIOR_B)
    )
    centre = bad / n

    def outside(p: float) -> bool:
        if p <= 0.0 or p >= 1.0:
            return True  # only reached when the estimate is not at that end
        return -(bad * math.log(p) + good * math.log1p(-p)) >= limit

    def search(inside: float, out: float) -> float:
        # the factor is log-convex in p0 and below 1 at the estimate: one crossing per side
        for _ in range(36):  # to ~1e-11 of the rate
            mid = (inside + out) / 2
            if outside(mid):
                out = mid
            else:
                inside = mid
        return inside

    lower = 0.0 if bad == 0 else search(centre, 0.0)
    upper = 1.0 if bad == n else search(centre, 1.0)
    return (lower, upper)


def difference_interval(
    canary: tuple[int, int], baseline: tuple[int, int], alpha: float
) -> tuple[float, float]:
    """A confidence sequence for ``canary rate - baseline rate`` from ``(bad, n)`` of each
    arm: the two rates' sequences at ``alpha/2`` each, combined."""
    c_low, c_high = rate_interval(canary[0], canary[1], alpha / 2)
    b_low, b_high = rate_interval(baseline[0], baseline[1], alpha / 2)
    return (c_low - b_high, c_high - b_low)


__all__ = [
    "ODDS_GRID",
    "RATIO_GRID",
    "ExceedanceTest",
    "RatioTest",
    "difference_interval",
    "log_bayes_factor",
    "rate_interval",
]
