"""Every rollout under way is a set of Prometheus series on the facade's admin listener."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from facade.rollout.engine import Phase, RolloutState
from facade.rollout.metrics import RolloutCollector
from facade.rollout.samples import Result, Verdict
from facade.rollout.state import RolloutStore


def test_state_files_become_series(tmp_path: Path) -> None:
    state = RolloutState("orders", "monolith", "orders", started=1.0, phase=Phase.PROGRESSING)
    state.step, state.configured, state.observed, state.actual = 1, 100, 9.5, 10.0
    state.verdicts = [
        Verdict("errors", Result.PASS, "ok", 900, 95, 0.1, (-0.5, 0.8), "points").as_dict(),
        Verdict("latency", Result.INCONCLUSIVE, "not yet").as_dict(),
    ]
    state.record(1.0, "step")
    state.record(2.0, "step")
    RolloutStore(tmp_path, "orders").save(state)
    (tmp_path / "broken.json").write_text("{not json")
    registry = CollectorRegistry()
    registry.register(RolloutCollector(tmp_path))
    text = generate_latest(registry).decode()
    assert (
        'strangler_rollout_info{from="monolith",route="orders",state="progressing",to="orders"} 1.0'
        in text
    )
    assert 'strangler_rollout_step{route="orders"} 2.0' in text
    assert (
        'strangler_rollout_weight_percent{backend="orders",kind="configured",route="orders"} 10.0'
        in text
    )
    assert (
        'strangler_rollout_weight_percent{backend="orders",kind="observed",route="orders"} 9.5'
        in text
    )
    assert 'strangler_rollout_verdict{metric="errors",result="pass",route="orders"} 1.0' in text
    assert 'strangler_rollout_verdict{metric="latency",result="pass",route="orders"} 0.0' in text
    assert 'strangler_rollout_estimate{metric="errors",route="orders"} 0.1' in text
    assert 'strangler_rollout_events_total{event="step",route="orders"} 2.0' in text


def test_no_rollouts_no_series(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(RolloutCollector(tmp_path / "missing"))
    assert "strangler_rollout_info{" not in generate_latest(registry).decode()
