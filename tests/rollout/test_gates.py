"""The data gates: each figure of each stream holds a step with its reason, counted from
the rollout's start; figures that cannot be read are a provider error, never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from facade.rollout.gates import SyncGateCheck
from facade.rollout.plan import SyncGate
from facade.rollout.samples import Result

GATE = SyncGate(streams=("up", "down"), max_lag=30, dead_letters=0, max_conflict_rate=5)


def figures(**per_stream: dict[str, Any]) -> Any:
    def read(names: list[str]) -> dict[str, dict[str, Any]]:
        assert names == ["up", "down"]
        return {name: dict(per_stream.get(name, {})) for name in names}

    return read


START: dict[str, Any] = {"dead_letters": 2, "conflicts": 10, "outbox_published": 1000}


def check(now: dict[str, dict[str, Any]], drifted: list[str] | None = None) -> list[Any]:
    origin = SyncGateCheck(GATE, figures(up=START, down=START), None).start()
    verify = (lambda stream, sample, settle: list(drifted or [])) if drifted is not None else None
    return SyncGateCheck(GATE, figures(**now), verify).check(origin)


HEALTHY: dict[str, Any] = {"outbox_oldest_pending_age_s": 1.5, "dead_letters": 2, "conflicts": 12,
           "outbox_published": 1400}  # fmt: skip


def test_healthy_streams_open_the_gate() -> None:
    verdicts = check({"up": HEALTHY, "down": HEALTHY}, drifted=[])
    assert [v.result for v in verdicts] == [Result.PASS, Result.PASS]
    assert "conflict rate 0.5 %" in verdicts[0].reason


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"outbox_oldest_pending_age_s": 45}, "lag 45.0s over 30s"),
        ({"dead_letters": 3}, "1 new dead letters (allowed 0)"),
        ({"conflicts": 40}, "conflict rate 7.5 % (30 of 400 changes) over 5 %"),
        ({"conflicts": 11, "outbox_published": 1000}, "conflict rate 100.0 %"),
    ],
)
def test_each_figure_holds_the_step_with_its_reason(change: dict[str, Any], says: str) -> None:
    verdicts = check({"up": HEALTHY, "down": {**HEALTHY, **change}}, drifted=[])
    assert verdicts[0].result is Result.PASS
    assert verdicts[1].result is Result.INCONCLUSIVE
    assert says in verdicts[1].reason
    assert verdicts[1].reason.startswith("down: ")


def test_dead_letters_from_before_the_rollout_do_not_count() -> None:
    verdicts = check({"up": {**HEALTHY, "dead_letters": 2}, "down": HEALTHY}, drifted=[])
    assert verdicts[0].result is Result.PASS


def test_lasting_drift_holds_the_step_and_names_the_ids() -> None:
    verdicts = check({"up": HEALTHY, "down": HEALTHY}, drifted=["orders.Order:7", "orders.Order:9"])
    assert {v.result for v in verdicts} == {Result.INCONCLUSIVE}
    assert "2 entities drifted: orders.Order:7, orders.Order:9" in verdicts[0].reason


def test_unreadable_figures_are_a_provider_error() -> None:
    def broken(names: list[str]) -> dict[str, dict[str, Any]]:
        raise RuntimeError("QueueDoesNotExist")

    origin: dict[str, dict[str, float]] = {"up": {}, "down": {}}
    verdicts = SyncGateCheck(GATE, broken, None).check(origin)
    assert [v.result for v in verdicts] == [Result.PROVIDER_ERROR]
    assert "QueueDoesNotExist" in verdicts[0].reason
