"""Windows of counts → verdicts: is the canary worse than the baseline on this route?

``Analyzer.add`` takes each interval's increments of both arms (a ``Window``) and
accumulates them for the whole rollout; ``Analyzer.verdicts`` judges three metrics, each
*pass*, *fail* or *inconclusive*:

errors
    Bad event: a 5xx answer or a connection failure. **Fail** when the sequential test of
    ``facade.rollout.stats.RatioTest`` shows the canary's error rate above the
    baseline's at the metric's share of ``false_alarm``, and the canary's observed rate
    is above the baseline's. **Pass** when the canary answered ``min_sample`` requests in
    this step and the anytime-valid interval of (canary rate - baseline rate), at
    ``1 - false_alarm``, lies below ``errors.max_increase`` points. Anything else —
    little traffic, no traffic, an increase neither ruled in nor out — is
    **inconclusive**, and the reason says which. ``max_increase`` is the margin a pass
    must prove; a fail needs proof of *any* increase (the controller rolls back on a
    fail before it looks for a pass). The interval assumes each arm's rate constant over
    the rollout, the test only compares the arms interval by interval: the test is the
    stronger of the two, and a fail may be reported with an interval that still reaches
    below zero.

latency (with a histogram)
    Bad event: a request slower than a threshold, frozen once: when the baseline has
    answered enough requests to estimate its ``quantile`` well (``50/(1 - quantile)``,
    at least 500: 1,000 for a p95 — an estimate from fewer moves the margin by tens of
    percent), the target ``L`` is the baseline's quantile x ``(1 + max_increase/100)``.
    Slow requests can only be counted at a bucket bound, so ``L`` becomes ``T``, the
    first bound at or above ``L``: the margin is never lost to the rounding, and two
    backends that differ by less than it (every pair of real backends differs a little)
    cannot fail each other — a test at a bound below ``L`` would prove, with enough
    traffic, differences far under the margin. Only the windows *after* the freeze
    are counted: the thresholds are fixed before any of the data they are counted on,
    so "slower than ``T``" is a fixed event for each of those requests and the test's
    guarantee holds as for errors. A threshold re-estimated from the data it is tested
    on would move with that data — a canary whose slow requests happened to raise the
    estimate would hide them — and nothing would be proven. **Fail**: both the
    same ``RatioTest`` on the requests slower than ``T`` (the canary is slower than
    ``T`` more often than the baseline, in the same windows: an incident that slows
    both arms proves nothing) and an ``ExceedanceTest`` of the canary's share slower
    than ``T`` against ``1 - quantile`` (its quantile is beyond the margin, not merely
    a little slower than the baseline's — a canary with colder caches and pools at 1 %
    of the traffic is slower in the tail and still within the plan) reject; requiring
    both keeps the false-alarm rate of either. **Pass**: after ``min_sample`` canary requests in
    the step, the anytime-valid upper bound of the canary's share slower than ``T`` is
    at most ``1 - quantile``: the canary's quantile is then at most ``T``, which is
    ``L`` or the next bound above it — the pass is as precise as the buckets are fine
    (the facade's are at most 20 % apart). The estimate is the canary's quantile in ms (interpolated
    within buckets, as Prometheus's ``histogram_quantile``), the baseline's is in the
    details.

latency (without a histogram: CloudWatch)
    The provider gives each arm's quantile per interval, not counts, and no test can be
    built on it: latency never fails and gets no share of the false-alarm budget. It
    passes when the canary answered ``min_sample`` requests in the step and its latest
    quantile is at most the baseline's x ``(1 + max_increase/100)`` — a comparison of
    point estimates without a guarantee — and is inconclusive otherwise. Errors and the
    critical guard still judge with their guarantees.

critical
    The guard against a canary that fails outright, on the current step's canary
    requests only (a new step is noticed when the step count passed to ``verdicts``
    drops, or told with ``start_step``): **fail** when at least ``critical.min_requests``
    requests were answered in the step, at least ``critical.errors`` % of them failed,
    and ``facade.rollout.stats.ExceedanceTest`` shows the rate above that level. The
    test keeps a handful of sparse errors at low traffic from rolling back a healthy
    canary (one error in 20 requests is 5 %, and happens to a 0.5 % canary one time in
    ten); a canary failing half its requests fails the guard at its first
    ``min_requests``.

The false-alarm budget. ``false_alarm`` is the chance *per rollout* that a healthy
canary is rolled back. It is split equally between the metrics that can fail (errors,
critical, and latency unless the provider has no histograms) — a union bound — and each
metric's test runs on the data of the whole rollout, never restarting per step. The
guard's share is split again over the steps: step ``i`` (from 0) gets
``2^-(i+1)`` of it. "Healthy" means, in every interval, a canary error rate (and slow
share) no higher than the baseline's, with independent requests, and for the guard a
canary error rate below ``critical.errors`` — an incident that fails both arms above
that level trips the guard; see ``facade.rollout.stats`` for what is proven.

Whatever the budget, no metric fails on fewer than three bad canary events (``MIN_BAD``):
an extra condition on a rejection only lowers the false-alarm rate, and it keeps one or
two errors at low traffic — inconclusive by any reading — from ever rolling back.

The state (``to_dict``) is a few dozen numbers however long the rollout runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from facade.rollout.plan import Analysis, Provider
from facade.rollout.samples import LATENCY_BOUNDS, ArmCounts, Result, Verdict, Window
from facade.rollout.stats import ExceedanceTest, RatioTest, difference_interval, rate_interval

STATE_VERSION = 1
# no metric fails on fewer bad canary events, whatever the budget: at a large false_alarm
# and a tiny canary share a single error could otherwise carry the test
MIN_BAD = 3


def _pct(rate: float) -> str:
    """A rate as a short percentage: 0.0042 → '0.42', 0.021 → '2.1'."""
    value = rate * 100
    text = f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _points(value: float) -> str:
    return ("+" if value >= 0 else "-") + _pct(abs(value))


def _alpha(alpha: float) -> str:
    return _pct(alpha) + " %"


def _encode_bounds(bounds: tuple[float, ...]) -> list[float | str]:
    return [b if math.isfinite(b) else "inf" for b in bounds]


def _decode_bounds(data: list[Any]) -> tuple[float, ...]:
    return tuple(math.inf if b == "inf" else float(b) for b in data)


def quantile(bounds: tuple[float, ...], buckets: tuple[int, ...] | list[int], q: float) -> float:
    """The ``q`` quantile (seconds) of a cumulative histogram, linear within the bucket
    it falls in (the first bucket starts at 0; beyond the last finite bound, that bound);
    NaN for an empty histogram."""
    if not buckets or buckets[-1] <= 0:
        return math.nan
    rank = q * buckets[-1]
    lower_bound, lower_count = 0.0, 0
    for bound, count in zip(bounds, buckets, strict=True):
        if count >= rank:
            if not math.isfinite(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass
class _Latency:
    """The latency metric's state: both arms' histograms over the rollout, the frozen
    threshold, and the test on the requests slower than it."""

    bounds: tuple[float, ...] = LATENCY_BOUNDS
    baseline: list[int] = field(default_factory=list)
    canary: list[int] = field(default_factory=list)
    threshold: float | None = None  # seconds, the test's bucket bound; None until frozen
    test: RatioTest = field(default_factory=RatioTest)
    pass_threshold: float | None = None  # seconds, the pass's bucket bound
    pass_counts: list[int] = field(default_factory=lambda: [0, 0])  # canary (n, slower)
    quantiles: tuple[float, float] | None = None  # the latest provider quantiles (b, c)
    # the canary's share slower than the threshold against the 1 - quantile it may have
    tail: ExceedanceTest | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tail": self.tail.to_dict() if self.tail else None,
            "bounds": _encode_bounds(self.bounds),
            "baseline": list(self.baseline),
            "canary": list(self.canary),
            "threshold": self.threshold,
            "test": self.test.to_dict(),
            "pass_threshold": self.pass_threshold,
            "pass_counts": list(self.pass_counts),
            "quantiles": list(self.quantiles) if self.quantiles else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Latency:
        q = data.get("quantiles")
        return cls(
            _decode_bounds(data["bounds"]),
            [int(v) for v in data["baseline"]],
            [int(v) for v in data["canary"]],
            None if data["threshold"] is None else float(data["threshold"]),
            RatioTest.from_dict(data["test"]),
            None if data["pass_threshold"] is None else float(data["pass_threshold"]),
            [int(v) for v in data["pass_counts"]],
            (float(q[0]), float(q[1])) if q else None,
            ExceedanceTest.from_dict(data["tail"]) if data.get("tail") else None,
        )


@dataclass
class _Step:
    """The critical guard's tally: the current step's canary requests and errors, and
    the latest window's (the first of a step the analysis learns of afterwards)."""

    index: int
    test: ExceedanceTest
    last: tuple[int, int] = (0, 0)  # the latest window's canary (requests, errors)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "test": self.test.to_dict(), "last": list(self.last)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Step:
        last = data.get("last", [0, 0])
        return cls(
            int(data["index"]), ExceedanceTest.from_dict(data["test"]), (int(last[0]), int(last[1]))
        )


class Analyzer:
    """The analysis of one rollout: ``add`` every window, ``verdicts`` after each, and
    optionally ``start_step`` when the weight changes. Keep ``to_dict`` in the rollout's
    state."""

    def __init__(self, settings: Analysis) -> None:
        self.settings = settings
        self.errors = RatioTest()
        self.latency = _Latency()
        self.step = _Step(0, ExceedanceTest(settings.critical.errors / 100))

    # -- the budget -------------------------------------------------------------------

    @property
    def latency_tested(self) -> bool:
        """Whether latency can fail (and so takes a share of the false-alarm budget)."""
        return (
            self.settings.latency is not None and self.settings.provider is not Provider.CLOUDWATCH
        )

    def alpha(self, metric: str) -> float:
        """The share of ``false_alarm`` of a metric ("errors", "latency", "critical"; the
        guard's share of the current step)."""
        shares = 3 if self.latency_tested else 2
        each = self.settings.false_alarm / shares
        if metric == "critical":
            return each * 2.0 ** -(self.step.index + 1)
        if metric == "latency" and not self.latency_tested:
            return 0.0
        return each

    # -- counting ---------------------------------------------------------------------

    def start_step(self, index: int) -> None:
        """The rollout is at step ``index`` (from 0): the guard counts from zero when the
        index changes; calling again with the same index changes nothing. (``verdicts``
        also notices a new step by itself, from its step counts.)"""
        if index != self.step.index:
            self.step = _Step(index, ExceedanceTest(self.settings.critical.errors / 100))

    def _follow_step(self, step_canary: int) -> None:
        # fewer canary requests in the step than the guard counted: the step changed
        # before the latest window, which is all the new step has seen so far
        if step_canary < self.step.test.n:
            n, errors = self.step.last
            self.step = _Step(
                self.step.index + 1, ExceedanceTest(self.settings.critical.errors / 100)
            )
            if n <= step_canary:
                self.step.test.update(n, errors)
            self.step.last = (n, errors)

    def add(self, window: Window) -> None:
        """Accumulate one interval's increments of both arms."""
        base, canary = window.baseline, window.canary
        self.errors.update(base.requests, base.errors, canary.requests, canary.errors)
        self.step.test.update(canary.requests, canary.errors)
        self.step.last = (max(canary.requests, 0), min(max(canary.errors, 0), canary.requests))
        if self.settings.latency is not None:
            self._add_latency(base, canary)

    def _add_latency(self, base: ArmCounts, canary: ArmCounts) -> None:
        assert self.settings.latency is not None
        lat = self.latency
        if base.quantile_seconds is not None and canary.quantile_seconds is not None:
            lat.quantiles = (base.quantile_seconds, canary.quantile_seconds)
        if lat.threshold is not None and lat.pass_threshold is not None:
            slow = [_slower(arm, lat.threshold) for arm in (base, canary)]
            if slow[0] is not None and slow[1] is not None:
                lat.test.update(slow[0][0], slow[0][1], slow[1][0], slow[1][1])
            passing = _slower(canary, lat.pass_threshold)
            if passing is not None:
                lat.pass_counts[0] += passing[0]
                lat.pass_counts[1] += passing[1]
                if lat.tail is None:
                    lat.tail = ExceedanceTest(1 - self.settings.latency.quantile)
                lat.tail.update(passing[0], passing[1])
        for arm, into in ((base, lat.baseline), (canary, lat.canary)):
            if not arm.buckets or arm.bounds != lat.bounds:
                continue  # another provider's buckets: not summed into these
            if not into:
                into.extend([0] * len(lat.bounds))
            for i, count in enumerate(arm.buckets):
                into[i] += count
        if lat.threshold is None and lat.baseline:
            q = self.settings.latency.quantile
            if lat.baseline[-1] >= _freeze_after(q):
                target = quantile(lat.bounds, lat.baseline, q) * (
                    1 + self.settings.latency.max_increase / 100
                )
                lat.threshold = lat.pass_threshold = _snap_up(lat.bounds, target)

    # -- judging ----------------------------------------------------------------------

    def verdicts(self, step_canary: int, step_baseline: int, step_min_sample: int) -> list[Verdict]:
        """The verdicts of errors, latency (when configured) and the critical guard, given
        the canary's and the baseline's requests in the current step and the step's
        ``min_sample``."""
        self._follow_step(step_canary)
        out = [self._errors(step_canary, step_min_sample)]
        if self.settings.latency is not None:
            out.append(self._latency(step_canary, step_min_sample))
        out.append(self._critical())
        return out

    def _not_enough(self, step_canary: int, step_min_sample: int) -> str | None:
        if step_canary < step_min_sample:
            return (
                f"not enough evidence yet: {step_canary} canary requests of "
                f"{step_min_sample} needed in this step"
            )
        return None

    def _errors(self, step_canary: int, step_min_sample: int) -> Verdict:
        test = self.errors
        counts: dict[str, Any] = {"baseline_n": test.baseline_n, "canary_n": test.canary_n}
        if test.canary_n == 0:
            return Verdict("errors", Result.INCONCLUSIVE, "no canary requests yet", **counts)
        if test.baseline_n == 0:
            return Verdict(
                "errors", Result.INCONCLUSIVE, "no baseline requests to compare with", **counts
            )
        alpha = self.alpha("errors")
        allowed = self.settings.errors.max_increase
        return _compare(
            "errors",
            test,
            alpha=alpha,
            level=self.settings.false_alarm,
            allowed=allowed / 100,
            shortfall=self._not_enough(step_canary, step_min_sample),
        )

    def _latency(self, step_canary: int, step_min_sample: int) -> Verdict:
        settings = self.settings.latency
        assert settings is not None
        lat = self.latency
        q = settings.quantile
        name = f"p{q * 100:g}"
        if not self.latency_tested or (not lat.baseline and lat.quantiles is not None):
            return self._latency_untested(step_canary, step_min_sample)
        base_q = quantile(lat.bounds, lat.baseline, q) if lat.baseline else math.nan
        canary_q = quantile(lat.bounds, lat.canary, q) if lat.canary else math.nan
        details: dict[str, Any] = {
            "quantile": q,
            "baseline_ms": _ms(base_q),
            "canary_ms": _ms(canary_q),
        }
        counts = {
            "baseline_n": lat.baseline[-1] if lat.baseline else 0,
            "canary_n": lat.canary[-1] if lat.canary else 0,
        }
        common: dict[str, Any] = {
            **counts,
            "estimate": _ms(canary_q),
            "unit": "ms",
            "details": details,
        }
        if lat.threshold is None:
            need = _freeze_after(q)
            return Verdict(
                "latency",
                Result.INCONCLUSIVE,
                f"no threshold yet: the baseline's {name} is estimated after {need} of its "
                f"requests, {counts['baseline_n']} so far",
                **common,
            )
        test = lat.test
        alpha = self.alpha("latency")
        threshold_ms = lat.threshold * 1000
        c_rate = test.canary_bad / test.canary_n if test.canary_n else math.nan
        b_rate = test.baseline_bad / test.baseline_n if test.baseline_n else math.nan
        details.update(
            threshold_ms=threshold_ms,
            canary_slow=c_rate * 100 if test.canary_n else None,  # percent
            baseline_slow=b_rate * 100 if test.baseline_n else None,
            tested_canary_n=test.canary_n,
            tested_baseline_n=test.baseline_n,
            e_value=test.e_value,
            e_needed=1 / alpha,
            alpha=alpha,
        )
        ms = f"{name} canary {_fmt_ms(canary_q)} vs baseline {_fmt_ms(base_q)}"
        if test.canary_n == 0 or test.baseline_n == 0:
            return Verdict(
                "latency",
                Result.INCONCLUSIVE,
                f"{ms}: no requests of both arms since the threshold ({threshold_ms:g} ms) was set",
                **common,
            )
        slow = (
            f"slower than {threshold_ms:g} ms: canary {_pct(c_rate)} % vs baseline {_pct(b_rate)} %"
        )
        over_margin = lat.tail is not None and lat.tail.rejects(alpha)
        if test.rejects(alpha) and over_margin and c_rate > b_rate and test.canary_bad >= MIN_BAD:
            return Verdict(
                "latency",
                Result.FAIL,
                f"{ms}, {slow}: regression at {_alpha(alpha)} false-alarm rate "
                f"(e-value {_num(test.e_value)} ≥ {_num(1 / alpha)}), and more than "
                f"{_pct(1 - q)} % of the canary's requests are over the margin",
                **common,
            )
        shortfall = self._not_enough(step_canary, step_min_sample)
        if shortfall:
            return Verdict("latency", Result.INCONCLUSIVE, f"{shortfall}; {ms}", **common)
        assert lat.pass_threshold is not None
        pass_ms = lat.pass_threshold * 1000
        n_pass, slow_pass = lat.pass_counts
        low, high = rate_interval(slow_pass, n_pass, self.settings.false_alarm)
        details.update(pass_threshold_ms=pass_ms, canary_over_pass_interval=[low, high])
        over = f"the canary's share slower than {pass_ms:g} ms is at most {_pct(high)} %"
        if high <= 1 - q:
            return Verdict(
                "latency",
                Result.PASS,
                f"{ms}, {slow}; {over} (≤ {_pct(1 - q)} % allowed)",
                **common,
            )
        return Verdict(
            "latency",
            Result.INCONCLUSIVE,
            f"{ms}, {slow}; {over}, more than the {_pct(1 - q)} % allowed cannot be ruled out "
            f"yet, and no regression is shown (e-value {_num(test.e_value)} of "
            f"{_num(1 / alpha)} needed)",
            **common,
        )

    def _latency_untested(self, step_canary: int, step_min_sample: int) -> Verdict:
        settings = self.settings.latency
        assert settings is not None
        name = f"p{settings.quantile * 100:g}"
        if self.latency.quantiles is None:
            return Verdict(
                "latency", Result.INCONCLUSIVE, f"no {name} of both arms from the provider yet"
            )
        base_q, canary_q = self.latency.quantiles
        limit = base_q * (1 + settings.max_increase / 100)
        details = {
            "baseline_ms": _ms(base_q),
            "canary_ms": _ms(canary_q),
            "limit_ms": _ms(limit),
            "tested": False,
        }
        common: dict[str, Any] = {"estimate": _ms(canary_q), "unit": "ms", "details": details}
        ms = f"{name} canary {_fmt_ms(canary_q)} vs baseline {_fmt_ms(base_q)} (provider's)"
        shortfall = self._not_enough(step_canary, step_min_sample)
        if shortfall:
            return Verdict("latency", Result.INCONCLUSIVE, f"{shortfall}; {ms}", **common)
        if canary_q <= limit:
            return Verdict(
                "latency",
                Result.PASS,
                f"{ms}: within {settings.max_increase:g} % (no histogram: not tested)",
                **common,
            )
        return Verdict(
            "latency",
            Result.INCONCLUSIVE,
            f"{ms}: above the {_fmt_ms(limit)} allowed; without a histogram latency is "
            "compared, not tested, and never rolls back",
            **common,
        )

    def _critical(self) -> Verdict:
        guard = self.settings.critical
        test = self.step.test
        alpha = self.alpha("critical")
        rate = test.bad / test.n if test.n else 0.0
        common: dict[str, Any] = {
            "canary_n": test.n,
            "estimate": rate * 100,
            "unit": "%",
            "details": {
                "step": self.step.index,
                "errors": test.bad,
                "level": guard.errors,
                "e_value": test.e_value,
                "e_needed": 1 / alpha,
                "alpha": alpha,
            },
        }
        if test.n < guard.min_requests:
            return Verdict(
                "critical",
                Result.INCONCLUSIVE,
                f"the guard judges after {guard.min_requests} canary requests in the step, "
                f"{test.n} so far",
                **common,
            )
        summary = f"{test.bad} of {test.n} canary requests failed in this step ({_pct(rate)} %)"
        if rate * 100 >= guard.errors and test.rejects(alpha) and test.bad >= MIN_BAD:
            return Verdict(
                "critical",
                Result.FAIL,
                f"{summary}: above the {guard.errors:g} % guard "
                f"(e-value {_num(test.e_value)} ≥ {_num(1 / alpha)})",
                **common,
            )
        return Verdict(
            "critical",
            Result.PASS,
            f"{summary}: not shown above the {guard.errors:g} % guard",
            **common,
        )

    # -- state ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "errors": self.errors.to_dict(),
            "latency": self.latency.to_dict(),
            "step": self.step.to_dict(),
        }

    @classmethod
    def from_dict(cls, settings: Analysis, data: dict[str, Any]) -> Analyzer:
        if data.get("version") != STATE_VERSION:
            raise ValueError(
                f"analysis state version {data.get('version')!r} is not {STATE_VERSION}"
            )
        analyzer = cls(settings)
        analyzer.errors = RatioTest.from_dict(data["errors"])
        analyzer.latency = _Latency.from_dict(data["latency"])
        analyzer.step = _Step.from_dict(data["step"])
        return analyzer


def _compare(
    metric: str,
    test: RatioTest,
    *,
    alpha: float,
    level: float,
    allowed: float,
    shortfall: str | None,
) -> Verdict:
    """A two-arm verdict from its test: fail, then not enough data, then pass."""
    c_rate = test.canary_bad / test.canary_n
    b_rate = test.baseline_bad / test.baseline_n
    diff = c_rate - b_rate
    details: dict[str, Any] = {
        "canary_rate": c_rate * 100,
        "baseline_rate": b_rate * 100,
        "e_value": test.e_value,
        "e_needed": 1 / alpha,
        "alpha": alpha,
        "confidence": 1 - level,
        "max_increase": allowed * 100,
    }
    common: dict[str, Any] = {
        "baseline_n": test.baseline_n,
        "canary_n": test.canary_n,
        "estimate": diff * 100,
        "unit": "points",
        "details": details,
    }
    rates = f"canary {_pct(c_rate)} % vs baseline {_pct(b_rate)} %, {_points(diff)} points"
    failed = test.rejects(alpha) and diff > 0 and test.canary_bad >= MIN_BAD
    if shortfall and not failed:
        # the interval is not needed to judge yet (and costs two root searches)
        return Verdict(metric, Result.INCONCLUSIVE, f"{shortfall}; {rates}", **common)
    low, high = difference_interval(
        (test.canary_bad, test.canary_n), (test.baseline_bad, test.baseline_n), level
    )
    common["interval"] = (low * 100, high * 100)
    summary = f"{rates}, interval [{_points(low)}, {_points(high)}]"
    if failed:
        return Verdict(
            metric,
            Result.FAIL,
            f"{summary}: regression at {_alpha(alpha)} false-alarm rate "
            f"(e-value {_num(test.e_value)} ≥ {_num(1 / alpha)})",
            **common,
        )
    if high <= allowed:
        return Verdict(
            metric,
            Result.PASS,
            f"{summary}: at most {_points(high)} points ({_points(allowed)} allowed)",
            **common,
        )
    return Verdict(
        metric,
        Result.INCONCLUSIVE,
        f"{summary}: more than the {_points(allowed)} points allowed cannot be ruled out "
        f"yet, and no regression is shown (e-value {_num(test.e_value)} of "
        f"{_num(1 / alpha)} needed)",
        **common,
    )


def _slower(arm: ArmCounts, threshold: float) -> tuple[int, int] | None:
    """(requests in the histogram, requests slower than ``threshold``), or None when the
    arm has no histogram or ``threshold`` is not one of its bounds."""
    if not arm.buckets:
        return None
    try:
        index = arm.bounds.index(threshold)
    except ValueError:
        return None
    total = arm.buckets[-1]
    return total, total - arm.buckets[index]


def _freeze_after(q: float) -> int:
    """Baseline requests before its ``q`` quantile is estimated for the threshold."""
    return max(500, math.ceil(50 / (1 - q)))


def _snap_up(bounds: tuple[float, ...], seconds: float) -> float:
    finite = [b for b in bounds if math.isfinite(b)]
    for bound in finite:
        if bound >= seconds:
            return bound
    return finite[-1]


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else seconds * 1000


def _fmt_ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.3g} ms"


def _num(value: float) -> str:
    return f"{value:.3g}" if value < 1e6 else f"{value:.2e}"


__all__ = ["Analyzer", "quantile"]
