"""A rollout with ``--apply`` on the ELBv2 stand-in: each step goes to the listener rule
and is read back before it counts; a rollback takes the canary's target group out of the
rule's forward action (sticky clients too); a failed apply pauses with AWS as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facade.aws import cli as aws_cli
from facade.rollout.controller import EXIT_PAUSED, EXIT_PROMOTED, EXIT_ROLLED_BACK
from facade.rollout.samples import Result
from facade.routing.model import RoutingTable
from tests.facade import test_aws_alb
from tests.facade.test_aws_alb import Alb
from tests.rollout.controller_kit import Provider, always, make, saved, share

stand_in_alb = test_aws_alb.stand_in_alb  # the ELBv2 stand-in's listener, as a fixture here

PLAN = """\
    rollout:
      to: orders
      steps: [10, 50, 100]
      step: {min_time: 10, min_sample: 5, max_wait: 300}
      bake: 10
      interval: 10
"""


def _with_plan(alb: Alb) -> Path:
    text = alb.routing.read_text().replace(
        "    stickiness: {duration: 3600}\n", "    stickiness: {duration: 3600}\n" + PLAN, 1
    )
    alb.routing.write_text(text)
    return alb.routing.parent


def _aws(alb: Alb, listener: str | None = None) -> dict[str, Any]:
    where = listener or alb.listener

    def push(table: RoutingTable) -> None:
        aws_cli.push(table, where, False, alb.prefix, None)

    def read_back(table: RoutingTable) -> float:
        return aws_cli.observed_shares(table, "orders", alb.listener, False, alb.prefix)["orders"]

    return {"push": push, "read_back": read_back}


def _observed(alb: Alb) -> dict[str, float]:
    from facade.routing.loader import load_table

    table = load_table(alb.routing)
    return aws_cli.observed_shares(table, "orders", alb.listener, False, alb.prefix)


def test_each_step_is_applied_and_read_back_then_promoted(stand_in_alb: Alb) -> None:
    here = _with_plan(stand_in_alb)
    assert stand_in_alb.cli("apply").returncode == 0
    controller, _, _ = make(
        here, provider=Provider(here / "routing.yaml", per_read=100), **_aws(stand_in_alb)
    )
    assert controller.run() == EXIT_PROMOTED
    assert _observed(stand_in_alb) == {"monolith": 0.0, "orders": 100.0}
    state = saved(here)
    assert state.actual == 100.0
    assert share(here) == 100


def test_a_rollback_reaches_aws_and_leaves_the_forward_action(stand_in_alb: Alb) -> None:
    here = _with_plan(stand_in_alb)
    assert stand_in_alb.cli("apply").returncode == 0
    controller, _, _ = make(here, always(Result.FAIL), **_aws(stand_in_alb))
    assert controller.run() == EXIT_ROLLED_BACK
    assert _observed(stand_in_alb) == {"monolith": 100.0, "orders": 0.0}
    forward = stand_in_alb.rules()["20"]["Actions"][0]["ForwardConfig"]
    assert stand_in_alb.lambda_group not in [g["TargetGroupArn"] for g in forward["TargetGroups"]]
    assert share(here) == 0


def test_a_failed_apply_pauses_with_aws_and_the_file_as_they_were(stand_in_alb: Alb) -> None:
    here = _with_plan(stand_in_alb)
    assert stand_in_alb.cli("apply").returncode == 0
    before = stand_in_alb.rules()["20"]["Actions"]
    missing = stand_in_alb.listener.rsplit("/", 1)[0] + "/0000000000000000"
    controller, _, _ = make(here, **_aws(stand_in_alb, listener=missing))
    assert controller.run() == EXIT_PAUSED
    assert "could not set orders to" in (saved(here).paused_reason or "")
    assert stand_in_alb.rules()["20"]["Actions"] == before
    assert share(here) == 10  # the file still says what AWS says
