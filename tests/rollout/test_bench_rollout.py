"""The guarantee the README states, checked on the benchmark's simulation in quick mode:
healthy canaries at low traffic are rolled back at most at the configured false-alarm
rate (plus Monte-Carlo slack), and a canary 5 points worse is rolled back."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
if str(LOADTESTS) not in sys.path:
    sys.path.insert(0, str(LOADTESTS))

import bench_rollout  # noqa: E402 - a script in loadtests/, importable once on the path

from facade.rollout.plan import Analysis  # noqa: E402


def scenario(name: str) -> bench_rollout.Scenario:
    return next(s for s in bench_rollout.scenarios() if s.name == name)


def test_healthy_low_traffic_canaries_are_rarely_rolled_back_and_flagger_s_rule_is_not() -> None:
    """300 healthy canaries at 0.2-2 requests/s: ours rolls back at most 1 % + 3 sigma of
    them; Flagger's threshold rule, on the same data, rolls back most of them."""
    rng = random.Random(1)
    runs = 300
    outcomes = [bench_rollout.simulate(scenario("healthy 0.2-2 req/s"), rng) for _ in range(runs)]
    alpha = Analysis().false_alarm
    ours = sum("ours" in o.rolled_back_at for o in outcomes) / runs
    flagger = sum("flagger" in o.rolled_back_at for o in outcomes) / runs
    assert ours <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert flagger > 0.5


def test_a_five_point_regression_is_rolled_back_within_the_rollout() -> None:
    """20 canaries 5 points worse at 10 requests/s: every one is rolled back by ours
    within the 900 s timeline."""
    rng = random.Random(2)
    outcomes = [
        bench_rollout.simulate(scenario("+5 points errors 10 req/s"), rng) for _ in range(20)
    ]
    assert all("ours" in o.rolled_back_at for o in outcomes)
    assert max(o.rolled_back_at["ours"] for o in outcomes) <= 900


def test_the_quick_run_writes_its_figures_as_json(tmp_path: Path) -> None:
    """``--quick --json`` exits 0 (the goal met) and writes every scenario's figures."""
    out = tmp_path / "rollout.json"
    assert (
        bench_rollout.main(["--quick", "--canaries", "50", "--faulty", "5", "--json", str(out)])
        == 0
    )
    figures = json.loads(out.read_text())
    assert set(figures["scenarios"]) == {s.name for s in bench_rollout.scenarios()}
    assert figures["goal_false_rollbacks"] == Analysis().false_alarm
