"""False rollbacks and time to detect: the rollout's analysis against Flagger's and Argo
Rollouts' rules, on the same simulated canaries.

    .venv/bin/python loadtests/bench_rollout.py [--quick] [--seed 1] [--json out.json]

Every simulated canary walks the same timeline: 300 s at 1 %, 300 s at 10 %, 300 s at
50 % of a route's traffic, judged every 10 s. Requests arrive as a Poisson process; each
is sent to the canary with the step's probability (so the observed split wanders around
the weight, as it does behind a load balancer); each fails with its arm's error rate and
takes a lognormal time (median 60 ms, sigma 0.5), counted into the facade's histogram
buckets. The monolith fails 0.5 % of its requests.

Healthy canaries are exactly like the monolith: 1,000 at the low traffic where the
complaint "false rollbacks" comes from, 0.2 to 2 requests/s on the route (log-uniform),
and 200 each at 10 and 100 requests/s, where the sequential tests see the most data,
and 200 at 10 requests/s through a shared incident (for two minutes a dependency of
both arms fails 10 % of their requests: the canary is no worse than the monolith). Faulty
ones add 1 or 5 points of errors, or take 50 % longer, at 1, 10 and 100 requests/s.
Three judges see the same counts:

ours      ``facade.rollout.analysis.Analyzer`` with the plan's defaults (false_alarm
          1 %, errors +1 point, p95 +25 %, critical guard 5 % after 20 requests,
          min_sample 200); rolls back at its first *fail*.
flagger   Flagger's threshold rule, every 60 s on that minute's canary requests: a
          success rate below 99 %, a p99 above 1.25 x the monolith's true p99, or no
          canary request at all ("no values found for metric") is a failed check; the
          5th failed check of the rollout rolls back (``threshold: 5``).
argo      Argo Rollouts' failure limit, every 60 s: a measurement ``error_rate <= 0.01``
          on that minute's canary requests, inconclusive without requests; the 4th
          failed measurement rolls back (``failureLimit: 3``). Latency is not measured.

The timeline is the same for every judge (none of them advances or holds the steps), so
they are compared on identical data. Printed per scenario and judge: the share of
canaries rolled back within the 900 s, and the median time to that rollback (200
canaries per fault). For the healthy canaries it is the false-rollback rate: the goal
for ours is at most the configured 1 %. Also printed: the share of healthy canaries
whose step ours would have passed (every verdict *pass* after 60 s and 200 canary
requests in the step). The default run takes about a minute; ``--quick`` runs fewer
canaries (the test suite runs its core that way).

Sampling is exact (inversion) for small counts, which covers every canary at low
traffic; beyond 20 expected events a binomial is drawn from its normal approximation,
and a Poisson count beyond a mean of 30 likewise — only the scenarios at 10 and 100
requests/s reach those sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facade.rollout.analysis import Analyzer, quantile
from facade.rollout.plan import Analysis
from facade.rollout.samples import LATENCY_BOUNDS, ArmCounts, Result, Window

INTERVAL = 10.0  # seconds between two analyses
STEPS = ((0.01, 300.0), (0.10, 300.0), (0.50, 300.0))  # canary share, seconds
MIN_TIME = 60.0  # seconds in a step before it may pass (plan default)
MIN_SAMPLE = 200  # canary requests in a step before it may pass (plan default)
BASE_ERRORS = 0.005
INCIDENT_ERRORS = 0.10  # a dependency both arms call fails for two minutes
MEDIAN_S = 0.060
SIGMA = 0.5
COMPETITOR_WINDOW = 6  # intervals per Flagger / Argo check (60 s)
FLAGGER_THRESHOLD = 5
FLAGGER_MIN_SUCCESS = 0.99
ARGO_FAILURE_LIMIT = 3
ARGO_MAX_ERROR_RATE = 0.01
JUDGES = ("ours", "flagger", "argo")


@dataclass(frozen=True)
class Scenario:
    name: str
    rates: tuple[float, float]  # route requests/s: fixed (a, a) or log-uniform in [a, b]
    extra_errors: float = 0.0  # points added to the canary's error rate, as a fraction
    slower: float = 1.0  # the canary's latency multiplier
    healthy: bool = False
    low_traffic: bool = False  # the scenario the goal is stated for
    incident: tuple[float, float] | None = None  # seconds when both arms fail 10 % more


def scenarios() -> list[Scenario]:
    out = [
        Scenario("healthy 0.2-2 req/s", (0.2, 2.0), healthy=True, low_traffic=True),
        Scenario("healthy 10 req/s", (10.0, 10.0), healthy=True),
        Scenario("healthy 100 req/s", (100.0, 100.0), healthy=True),
        Scenario(
            "healthy in an incident 10 req/s",
            (10.0, 10.0),
            healthy=True,
            incident=(400.0, 520.0),
        ),
    ]
    for rate in (1.0, 10.0, 100.0):
        out.append(Scenario(f"+1 point errors {rate:g} req/s", (rate, rate), extra_errors=0.01))
        out.append(Scenario(f"+5 points errors {rate:g} req/s", (rate, rate), extra_errors=0.05))
        out.append(Scenario(f"+50 % latency {rate:g} req/s", (rate, rate), slower=1.5))
    return out


# -- sampling ---------------------------------------------------------------------------


def binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p >= 20.0:
        draw = round(rng.gauss(n * p, math.sqrt(n * p * (1.0 - p))))
        return min(max(draw, 0), n)
    u = rng.random()
    k, pk = 0, (1.0 - p) ** n
    cdf = pk
    odds = p / (1.0 - p)
    while u > cdf and k < n:
        pk *= (n - k) / (k + 1) * odds
        k += 1
        cdf += pk
    return k


def poisson(rng: random.Random, mean: float) -> int:
    if mean >= 30.0:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def bucket_probabilities(scale: float) -> list[float]:
    """P(latency <= bound) for each bound, the canary's latency being ``scale`` x."""
    mu = math.log(MEDIAN_S * scale)
    out = []
    for bound in LATENCY_BOUNDS:
        if math.isinf(bound):
            out.append(1.0)
        else:
            out.append(0.5 * (1.0 + math.erf((math.log(bound) - mu) / (SIGMA * math.sqrt(2)))))
    return out


def histogram(rng: random.Random, n: int, cdf: list[float]) -> tuple[int, ...]:
    """Cumulative bucket counts of ``n`` requests: a multinomial drawn bucket by bucket."""
    out, total, left, below = [], 0, n, 0.0
    for c in cdf:
        share = (c - below) / (1.0 - below) if below < 1.0 else 0.0
        got = binomial(rng, left, min(max(share, 0.0), 1.0))
        total += got
        left -= got
        below = c
        out.append(total)
    out[-1] = n
    return tuple(out)


def true_p99_ms() -> float:
    return MEDIAN_S * math.exp(SIGMA * 2.3263478740408408) * 1000


# -- the judges -------------------------------------------------------------------------


@dataclass
class Outcome:
    rolled_back_at: dict[str, float] = field(default_factory=dict)  # judge → seconds
    passed: list[bool] = field(default_factory=list)  # ours: each step's verdicts all passed


def simulate(scenario: Scenario, rng: random.Random) -> Outcome:
    """One canary through the timeline; the time each judge rolls it back, if it does."""
    low, high = scenario.rates
    rate = low if low == high else math.exp(rng.uniform(math.log(low), math.log(high)))
    base_cdf = bucket_probabilities(1.0)
    canary_cdf = bucket_probabilities(scenario.slower)
    canary_errors = BASE_ERRORS + scenario.extra_errors
    flagger_p99 = 1.25 * true_p99_ms()

    analyzer = Analyzer(Analysis())
    out = Outcome()
    flagger_failed = argo_failed = 0
    minute: list[ArmCounts] = []
    now = 0.0
    for index, (share, seconds) in enumerate(STEPS):
        analyzer.start_step(index)
        step_canary = step_baseline = 0
        step_passed = False
        for tick in range(int(seconds / INTERVAL)):
            now += INTERVAL
            n = poisson(rng, rate * INTERVAL)
            n_canary = binomial(rng, n, share)
            n_base = n - n_canary
            shared = 0.0
            if scenario.incident and scenario.incident[0] < now <= scenario.incident[1]:
                shared = INCIDENT_ERRORS
            base = ArmCounts(
                n_base,
                binomial(rng, n_base, BASE_ERRORS + shared),
                LATENCY_BOUNDS,
                histogram(rng, n_base, base_cdf),
            )
            canary = ArmCounts(
                n_canary,
                binomial(rng, n_canary, canary_errors + shared),
                LATENCY_BOUNDS,
                histogram(rng, n_canary, canary_cdf),
            )
            step_canary += n_canary
            step_baseline += n_base
            if "ours" not in out.rolled_back_at:
                analyzer.add(Window(base, canary, INTERVAL))
                verdicts = analyzer.verdicts(step_canary, step_baseline, MIN_SAMPLE)
                if any(v.result is Result.FAIL for v in verdicts):
                    out.rolled_back_at["ours"] = now
                elif (
                    not step_passed
                    and (tick + 1) * INTERVAL >= MIN_TIME
                    and step_canary >= MIN_SAMPLE
                    and all(v.result is Result.PASS for v in verdicts)
                ):
                    step_passed = True
            minute.append(canary)
            if len(minute) == COMPETITOR_WINDOW:
                requests = sum(c.requests for c in minute)
                errors = sum(c.errors for c in minute)
                buckets = tuple(sum(col) for col in zip(*(c.buckets for c in minute), strict=True))
                minute = []
                if "flagger" not in out.rolled_back_at:
                    if requests == 0:
                        flagger_failed += 1  # "no values found for metric"
                    else:
                        p99 = quantile(LATENCY_BOUNDS, buckets, 0.99) * 1000
                        success = 1 - errors / requests
                        if success < FLAGGER_MIN_SUCCESS or p99 > flagger_p99:
                            flagger_failed += 1
                    if flagger_failed >= FLAGGER_THRESHOLD:
                        out.rolled_back_at["flagger"] = now
                if "argo" not in out.rolled_back_at and requests > 0:
                    if errors / requests > ARGO_MAX_ERROR_RATE:
                        argo_failed += 1
                    if argo_failed > ARGO_FAILURE_LIMIT:
                        out.rolled_back_at["argo"] = now
            if len(out.rolled_back_at) == len(JUDGES):
                return out
        out.passed.append(step_passed)
    return out


def run(
    canaries: int,
    faulty: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every scenario: ``canaries`` healthy canaries, ``faulty`` of each fault; figures
    per scenario and judge."""
    figures: dict[str, Any] = {}
    for number, scenario in enumerate(scenarios()):
        rng = random.Random(seed * 1000 + number)
        if scenario.healthy:
            count = canaries if scenario.low_traffic else max(1, canaries // 5)
        else:
            count = faulty
        outcomes = [simulate(scenario, rng) for _ in range(count)]
        row: dict[str, Any] = {"canaries": count, "healthy": scenario.healthy}
        for judge in JUDGES:
            times = [o.rolled_back_at[judge] for o in outcomes if judge in o.rolled_back_at]
            row[judge] = {
                "rolled_back": len(times) / count,
                "median_seconds": statistics.median(times) if times else None,
            }
        row["ours"]["steps_passed"] = [
            sum(len(o.passed) > i and o.passed[i] for o in outcomes) / count
            for i in range(len(STEPS))
        ]
        figures[scenario.name] = row
        if progress:
            progress(scenario.name)
    return figures


def table(figures: dict[str, Any]) -> str:
    def cell(judge: dict[str, Any]) -> str:
        median = judge["median_seconds"]
        when = f"{median:5.0f} s" if median is not None else "     -"
        return f"{judge['rolled_back'] * 100:6.1f} % {when}"

    header = f"{'scenario':32} {'n':>5}   " + "   ".join(f"{j:>15}" for j in JUDGES)
    lines = [
        "rolled back within the 900 s rollout, median time to the rollback",
        header,
        "-" * len(header),
    ]
    for name, row in figures.items():
        cells = "   ".join(f"{cell(row[j]):>15}" for j in JUDGES)
        lines.append(f"{name:32} {row['canaries']:>5}   {cells}")
    lines.append("")
    lines.append(
        "healthy canaries whose step passed (ours: every verdict pass, after 60 s and 200 "
        "canary requests; the rest stayed inconclusive)"
    )
    lines.append(f"{'':32}        " + "".join(f"{share * 100:>8g} %" for share, _ in STEPS))
    for name, row in figures.items():
        if row["healthy"]:
            shares = "".join(f"{p * 100:8.1f} %" for p in row["ours"]["steps_passed"])
            lines.append(f"{name:32}        {shares}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer canaries (a few seconds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--canaries", type=int, default=None, help="healthy canaries")
    parser.add_argument("--faulty", type=int, default=None, help="canaries per fault")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    canaries = args.canaries or (200 if args.quick else 1000)
    faulty = args.faulty or (20 if args.quick else 200)
    started = time.perf_counter()
    figures = run(canaries, faulty, args.seed, lambda name: print(f"  {name}", file=sys.stderr))
    elapsed = time.perf_counter() - started
    print(table(figures))
    healthy = [figures[s.name] for s in scenarios() if s.healthy]
    count = sum(row["canaries"] for row in healthy)
    false_rollbacks = sum(row["ours"]["rolled_back"] * row["canaries"] for row in healthy) / count
    goal = Analysis().false_alarm
    # the estimate's Monte-Carlo error: met unless it is 3 standard errors above the goal
    slack = 3 * math.sqrt(goal * (1 - goal) / count)
    ok = false_rollbacks <= goal + slack
    print(
        f"\nours: {false_rollbacks * 100:.2f} % false rollbacks of {count} healthy canaries "
        f"(goal <= {goal * 100:g} %, +{slack * 100:.2f} Monte-Carlo slack): "
        f"{'met' if ok else 'NOT MET'}; {elapsed:.0f} s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "canaries": canaries,
                    "faulty": faulty,
                    "seconds": elapsed,
                    "goal_false_rollbacks": goal,
                    "false_rollbacks": false_rollbacks,
                    "healthy_canaries": count,
                    "scenarios": figures,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
