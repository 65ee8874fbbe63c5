"""A route's rollout block in routing.yaml: defaults, and every mistake with file:line."""

from __future__ import annotations

import pytest

from facade.exceptions import RoutingFileError
from facade.rollout.plan import OnInconclusive, Provider
from facade.routing.loader import parse_table

HEAD = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
  catalog: {kind: ecs, url: "http://127.0.0.1:8003"}
sync:
  orders-up:
    from: monolith
    to: orders
    queue: orders-up.fifo
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100, orders: 0}
    rollout:
"""


def plan(block: str):  # type: ignore[no-untyped-def]
    table = parse_table(HEAD + block, "routing.yaml")
    return table.route("orders").rollout


def problems(block: str) -> list[str]:
    with pytest.raises(RoutingFileError) as caught:
        parse_table(HEAD + block, "routing.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_smallest_plan_gets_sensible_defaults() -> None:
    found = plan("      to: orders\n      steps: [1, 10, 100]\n")
    assert [s.share for s in found.steps] == [10, 100, 1000]
    assert found.baseline == "monolith"
    assert found.on_inconclusive is OnInconclusive.PAUSE
    assert found.analysis.provider is Provider.FACADE
    assert found.analysis.false_alarm == 0.01
    assert found.steps[0].min_sample == 200
    assert found.gates.sync is None


def test_step_overrides_and_the_sync_gate_default_to_the_backends_streams() -> None:
    found = plan(
        "      to: orders\n"
        "      steps: [0.5, {weight: 25, min_time: 5, min_sample: 10}, 100]\n"
        "      step: {min_time: 30, max_wait: 600}\n"
        "      gates: {sync: {max_lag: 10}}\n"
    )
    assert [(s.share, s.min_time, s.min_sample, s.max_wait) for s in found.steps] == [
        (5, 30, 200, 600),
        (250, 5, 10, 600),
        (1000, 30, 200, 600),
    ]
    assert found.gates.sync.streams == ("orders-up",)
    assert found.gates.sync.max_lag == 10


@pytest.mark.parametrize(
    ("block", "where", "says"),
    [
        ("      to: catalog\n      steps: [100]\n", "routing.yaml:16:11: routes[0] (orders)"
         ".rollout.to", "one of its targets (monolith, orders)"),
        ("      to: orders\n      steps: [10, 5, 100]\n", "routing.yaml:17:19:",
         "each step must be above the one before (10 %)"),
        ("      to: orders\n      steps: [10, 50]\n", "routing.yaml:17:19:",
         "a rollout ends at 100"),
        ("      to: orders\n      steps: [0.05, 100]\n", "routing.yaml:17:15:",
         "steps of 0.1"),
        ("      to: orders\n      steps: [100]\n      on_inconclusive: wait\n",
         "routing.yaml:18:24:", "one of hold, pause, rollback"),
        ("      to: orders\n      steps: [100]\n      analysis: {false_alarm: 0.5}\n",
         "routing.yaml:18:31:", "above 0 to 0.2"),
        ("      to: orders\n      steps: [100]\n      analysis: {provider: prometheus}\n",
         "routing.yaml:18:", "needs prometheus: http://HOST:9090"),
        ("      to: orders\n      steps: [100]\n      gates: {sync: {streams: [nope]}}\n",
         "routing.yaml:18:", "'nope' is not a sync stream; streams: orders-up"),
        ("      to: orders\n      steps: [100]\n      step: {min_time: 60, max_wait: 30}\n",
         "routing.yaml:18:", "30s is shorter than min_time (60s)"),
        ("      to: orders\n      stepz: [100]\n", "routing.yaml:17:7:", "did you mean 'step"),
    ],
)  # fmt: skip
def test_every_mistake_is_named_with_its_line(block: str, where: str, says: str) -> None:
    found = problems(block)
    assert any(p.startswith(where) and says in p for p in found), found


def test_a_deny_rule_has_nothing_to_roll_out() -> None:
    text = (
        HEAD.replace(
            "    targets: {monolith: 100, orders: 0}\n",
            "    fixed_response: {status: 404}\n",
        )
        + "      to: orders\n      steps: [100]\n"
    )
    with pytest.raises(RoutingFileError, match="nothing to roll out"):
        parse_table(text, "routing.yaml")


def test_the_sample_routing_file_has_a_valid_orders_plan() -> None:
    from pathlib import Path

    from facade.routing.loader import load_table

    found = load_table(Path(__file__).parents[2] / "routing.yaml").route("orders").rollout
    assert found is not None
    assert found.to == "orders"
    assert found.steps[-1].share == 1000
    assert found.gates.sync is not None
    assert set(found.gates.sync.streams) == {"orders-to-lambda", "orders-to-monolith"}
