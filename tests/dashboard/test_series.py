"""The dashboard's ring of samples: cumulative counters in, per-period series and the
last minute's shares out. Pure and fast: totals are scripted, the clock is a number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facade.dashboard.series import HORIZON, SHARE_WINDOW, Ring, quantile
from facade.dashboard.views import held_back, owner
from facade.proxy.metrics import BUCKETS, BackendTotals, Metrics
from facade.routing.loader import parse_table

NB = len(BUCKETS) + 1


def totals(requests: float, errors: float = 0.0, bucket: int = 3) -> BackendTotals:
    buckets = [0.0] * NB
    buckets[bucket] = requests
    return BackendTotals(requests, errors, tuple(buckets), 0.0)


class Script:
    """Totals that the test sets between two samples."""

    def __init__(self) -> None:
        self.now: dict[tuple[str, str], BackendTotals] = {}

    def __call__(self) -> dict[tuple[str, str], BackendTotals]:
        return dict(self.now)


def test_quantile_interpolates_inside_the_bucket_the_rank_falls_in() -> None:
    low, mid, high = BUCKETS[0], BUCKETS[1], BUCKETS[2]
    buckets = [0.0] * NB
    buckets[1] = 50  # (low, mid]
    buckets[2] = 50  # (mid, high]
    assert quantile(0.5, tuple(buckets)) == pytest.approx(mid)
    assert quantile(0.25, tuple(buckets)) == pytest.approx(low + (mid - low) / 2)
    assert quantile(0.99, tuple(buckets)) == pytest.approx(mid + (high - mid) * 49 / 50)
    assert quantile(0.5, (0.0,) * NB) is None
    beyond = [0.0] * NB
    beyond[-1] = 10  # slower than the last bound: its lower edge is all that is known
    assert quantile(0.99, tuple(beyond)) == BUCKETS[-1]


def test_each_sample_turns_the_increments_into_rate_errors_and_latency() -> None:
    script = Script()
    ring = Ring(script, period=1.0)
    script.now = {("orders", "monolith"): totals(100, 0)}
    ring.sample(0.0)
    later = [0.0] * NB
    later[3], later[4] = 100, 200  # the 200 new requests all fell in the fifth bucket
    script.now = {("orders", "monolith"): BackendTotals(300, 10, tuple(later), 0.0)}
    ring.sample(2.0)
    point = ring.latest(("orders", "monolith"))
    assert point is not None
    assert (point.count, point.rate, point.error_rate) == (200, 100.0, 5.0)
    low, high = BUCKETS[3], BUCKETS[4]
    assert point.p50 == pytest.approx((low + (high - low) * 0.5) * 1000)
    assert point.p99 == pytest.approx((low + (high - low) * 0.99) * 1000)


def test_a_counter_that_went_down_counts_from_zero_again() -> None:
    script = Script()
    ring = Ring(script)
    script.now = {("r", "b"): totals(500)}
    ring.sample(0.0)
    script.now = {("r", "b"): totals(40)}  # a worker restarted and lost its figures
    ring.sample(1.0)
    point = ring.latest(("r", "b"))
    assert point is not None
    assert point.count == 40


def test_observed_shares_count_only_the_last_minute() -> None:
    script = Script()
    ring = Ring(script)
    script.now = {("orders", "monolith"): totals(0), ("orders", "orders"): totals(0)}
    ring.sample(0.0)
    # the first two minutes: everything to the monolith
    for t in range(1, 121):
        script.now = {("orders", "monolith"): totals(10 * t), ("orders", "orders"): totals(0)}
        ring.sample(float(t))
    # then a minute split 50/50
    for t in range(121, 121 + int(SHARE_WINDOW)):
        extra = 10 * (t - 120)
        script.now = {
            ("orders", "monolith"): totals(1200 + extra / 2),
            ("orders", "orders"): totals(extra / 2),
        }
        ring.sample(float(t))
    shares = ring.observed_shares("orders", float(120 + SHARE_WINDOW))
    assert shares is not None
    assert shares["orders"] == pytest.approx(50.0, abs=1.0)
    assert ring.observed_shares("nothing", 0.0) is None


def test_the_ring_keeps_fifteen_minutes_whatever_runs() -> None:
    script = Script()
    ring = Ring(script, period=2.0)
    for t in range(2000):
        script.now = {("r", "b"): totals(t)}
        ring.sample(2.0 * t)
    assert len(ring.samples) == HORIZON / 2.0 + 1
    series = ring.series(origin=1_000.0)
    assert len(series["t"]) == len(ring.samples)
    assert series["t"][-1] == 1_000.0 + 2.0 * 1999
    assert set(series["routes"]["r"]["backends"]["b"]) == {"count", "rate", "errors", "p50", "p99"}


def test_totals_sum_every_workers_shared_figures(tmp_path: Path) -> None:
    """What ``serve --workers N`` shares through its directory is summed in the totals
    the ring samples, as a scrape sums it."""
    other = Metrics()
    for _ in range(7):
        other.observe("orders", "orders", "weight", 502, 0.02)
    (tmp_path / "worker-1.json").write_text(json.dumps(other._state()))
    own = Metrics(tmp_path)
    for _ in range(3):
        own.observe("orders", "orders", "sticky", 200, 0.02)
    found = own.totals()[("orders", "orders")]
    assert (found.requests, found.errors) == (10, 7)


def test_a_failing_sync_gate_is_shown_as_holding_back_the_rollout() -> None:
    views = [
        {
            "route": "orders",
            "step": 2,
            "gates": [
                {"metric": "sync", "result": "fail", "reason": "orders-to-monolith lags 45 s"},
                {"metric": "shadow", "result": "fail", "reason": "other"},
            ],
        },
        {"route": "catalog", "step": 1, "gates": [{"metric": "sync", "result": "pass"}]},
    ]
    assert held_back(views) == [
        {
            "route": "orders",
            "step": 2,
            "metric": "sync",
            "result": "fail",
            "reason": "orders-to-monolith lags 45 s",
        }
    ]


def test_the_owner_is_who_takes_the_traffic() -> None:
    table = parse_table(
        "version: 1\n"
        "backends:\n"
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
        "  orders: {kind: ecs, url: 'http://127.0.0.1:2'}\n"
        "routes:\n"
        "  - {name: a, match: {paths: ['/a']}, targets: {monolith: 100, orders: 0}}\n"
        "  - {name: b, match: {paths: ['/b']}, targets: {monolith: 90, orders: 10}}\n"
        "  - {name: c, match: {paths: ['/c']}, targets: {monolith: 0, orders: 100}}\n"
        "default: monolith\n",
        "routing.yaml",
    )
    assert [owner(table, r) for r in table.all_routes] == [
        "monolith",
        "split",
        "orders",
        "monolith",
    ]
