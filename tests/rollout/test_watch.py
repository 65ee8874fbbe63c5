"""``analysis.watch``: between two analyses the controller looks for a failure every
``watch`` seconds with the real analysis, so a canary that starts failing is rolled back
within a look, not at the next interval — and nothing but a failure acts early."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from facade.rollout.controller import EXIT_PROMOTED, EXIT_ROLLED_BACK, Controller
from facade.rollout.providers import ProviderError
from facade.rollout.samples import LATENCY_BOUNDS, ArmCounts
from facade.rollout.state import RolloutStore
from facade.routing.loader import load_table
from tests.rollout.controller_kit import Clock, audit, saved, share, weights, write_routing


@dataclass
class Traffic:
    """Cumulative counts of a route serving ``rate`` requests a second on the clock,
    split by the file's weight; from ``fault_from`` on, ``fault`` of the canary's fail.
    ``refuse`` lists the readings (1-based) that fail."""

    routing: Path
    clock: Clock
    name: str = "traffic"
    rate: float = 100.0
    fault: float = 0.0
    fault_from: float = float("inf")
    refuse: frozenset[int] = frozenset()
    reads: int = 0
    at: float | None = None
    baseline: int = 0
    canary: int = 0
    canary_errors: int = 0
    failed_served: int = 0  # canary requests that failed while the fault was on
    _carry: float = 0.0

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        self.reads += 1
        now = self.clock()
        if self.at is not None:
            share = load_table(self.routing).route(route).share_of(canary)
            served = self.rate * (now - self.at) + self._carry
            whole = int(served)
            self._carry = served - whole
            to_canary = whole * share // 1000
            self.baseline += whole - to_canary
            self.canary += to_canary
            if now > self.fault_from:
                bad = round(to_canary * self.fault)
                self.canary_errors += bad
                self.failed_served += bad
        self.at = now
        if self.reads in self.refuse:
            raise ProviderError(f"reading {self.reads} refused")
        # every request within 1 ms: latency passes once the sample is there
        return (
            ArmCounts(self.baseline, 0, buckets=(self.baseline,) * len(LATENCY_BOUNDS)),
            ArmCounts(
                self.canary, self.canary_errors, buckets=(self.canary,) * len(LATENCY_BOUNDS)
            ),
        )


def controller(directory: Path, traffic: Traffic, clock: Clock) -> Controller:
    return Controller(
        directory / "routing.yaml",
        "orders",
        RolloutStore(directory / "state", "orders"),
        traffic,
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
    )


def analyses(directory: Path) -> list[dict[str, object]]:
    return [e for e in audit(directory) if e.get("action") == "rollout.analysis"]


def test_a_canary_failing_mid_interval_is_rolled_back_within_a_look(tmp_path: Path) -> None:
    write_routing(tmp_path, min_time=30, watch=1)
    clock = Clock()
    # the 1 % step passes; 10 % starts failing half its requests 3 s into the step
    traffic = Traffic(tmp_path / "routing.yaml", clock, rate=1000.0, fault=0.5)
    run = controller(tmp_path, traffic, clock)
    original = run._enter_step

    def enter(state, index, why):  # type: ignore[no-untyped-def]
        entered = original(state, index, why)
        if index == 1:
            traffic.fault_from = clock.now + 3
        return entered

    run._enter_step = enter  # type: ignore[method-assign]
    assert run.run() == EXIT_ROLLED_BACK
    assert weights(tmp_path) == [1, 10, 0]
    state = saved(tmp_path)
    assert state.reason is not None
    assert state.reason.startswith("critical:")
    rolled = next(e for e in state.history if e["event"] == "rolled_back")
    step = [e for e in state.history if e["event"] == "step"][-1]
    # the interval is 10 s: the guard's proof (≥ 20 requests, e-value) came within a
    # second of enough failed requests, long before the next analysis
    assert rolled["at"] - (step["at"] + 3) <= 2.0
    # at 100 canary requests a second failing half, a second's worth is about 50 failed;
    # waiting for the analysis would have been several hundred
    assert traffic.failed_served <= 150
    # the look that failed is logged as an analysis, with its verdicts
    assert analyses(tmp_path)[-1]["decision"] == "rollback"


def test_nothing_but_a_failure_acts_between_analyses(tmp_path: Path) -> None:
    write_routing(tmp_path, min_time=30, bake=60, watch=1)
    clock = Clock()
    traffic = Traffic(tmp_path / "routing.yaml", clock, rate=1000.0)
    run = controller(tmp_path, traffic, clock)
    started = clock.now
    assert run.run() == EXIT_PROMOTED
    assert share(tmp_path) == 100
    # the looks read the provider about once a second; steps advance only at analyses,
    # each logged, one every interval (10 s)
    took = clock.now - started
    assert traffic.reads >= took * 0.8
    logged = analyses(tmp_path)
    assert len(logged) <= took / 10 + 2
    assert all(e["decision"] != "rollback" for e in logged)
    # each step after the first was entered at an analysis (its interval after the last)
    steps = [e["at"] for e in saved(tmp_path).history if e["event"] == "step"]
    assert all(round(b - a, 6) % 10 == 0 for a, b in itertools.pairwise(steps))


def test_a_provider_error_during_a_look_does_not_count_toward_a_pause(tmp_path: Path) -> None:
    write_routing(tmp_path, min_time=30, watch=1)
    clock = Clock()
    # three errors in a row pause a rollout — but these fall on looks, not analyses
    traffic = Traffic(tmp_path / "routing.yaml", clock, rate=1000.0, refuse=frozenset({3, 4, 5}))
    run = controller(tmp_path, traffic, clock)
    assert run.run() == EXIT_PROMOTED
    assert not any(e.get("action") == "rollout.paused" for e in audit(tmp_path))


def test_watch_zero_looks_only_at_analyses(tmp_path: Path) -> None:
    write_routing(tmp_path, min_time=30, watch=0)
    clock = Clock()
    traffic = Traffic(tmp_path / "routing.yaml", clock, rate=1000.0)
    run = controller(tmp_path, traffic, clock)
    assert run.run() == EXIT_PROMOTED
    assert traffic.reads == len(analyses(tmp_path))
