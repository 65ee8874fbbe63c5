"""The Step Functions task of an unattended rollout, against the stand-ins (moto's ELBv2
and CloudWatch): it reads CloudWatch, asks the engine, moves only the forward weights of
the route's live rule and reads them back; a rollback takes the canary out of the
action; the state it returns is what the next invocation continues from. Verdicts come
from a scripted analyzer (the analysis itself is tested on its own)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from facade import aws_local
from facade.aws import iam, metrics, stepfunctions
from facade.aws.cli import push
from facade.aws.client import ElbClient
from facade.aws.cloudwatch import CloudWatchClient
from facade.aws.route_rule import RouteRule
from facade.exceptions import AwsError, ConfigError
from facade.rollout import task
from facade.rollout.cloudwatch import CloudWatchProvider, arms_for_listener
from facade.rollout.controller import Mover
from facade.rollout.engine import RolloutState
from facade.rollout.plan import Analysis
from facade.rollout.samples import Result, Verdict, Window
from facade.routing.loader import load_table
from tests.rollout.aws_stand_in import Balancer, balancer


class Analyzer:
    """Passes every window, or fails them once ``Analyzer.failing`` is set."""

    failing = False
    windows: list[Window] = []  # shared: the task makes a new analyzer each time

    def __init__(self, settings: Analysis, saved: dict[str, Any] | None) -> None:
        self.seen = int((saved or {}).get("seen", 0))

    def start_step(self, index: int) -> None:
        pass

    def add(self, window: Window) -> None:
        Analyzer.windows.append(window)
        self.seen += 1

    def verdicts(self, step_canary: int, step_baseline: int, min_sample: int) -> list[Verdict]:
        result = Result.FAIL if Analyzer.failing else Result.PASS
        return [Verdict("errors", result, f"scripted {result}", step_baseline, step_canary)]

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Recording(ElbClient):
    """Records the ELBv2 operations the task calls."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.operations: set[str] = set()

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.operations.add(operation)
        return super().call(operation, **kwargs)


@pytest.fixture
def alb(aws_endpoints: aws_local.Endpoints, tmp_path: Path) -> Iterator[Balancer]:
    Analyzer.failing, Analyzer.windows = False, []
    with balancer(aws_endpoints, tmp_path) as found:
        push(load_table(found.routing), found.listener, False, found.prefix, None)  # apply
        yield found


def _task(alb: Balancer, clock: Clock) -> tuple[task.Task, Recording]:
    environ = {
        task.ENV_ROUTING: str(alb.routing),
        task.ENV_LISTENER: alb.listener,
        task.ENV_PREFIX: alb.prefix,
    }
    endpoint = alb.cloudwatch.meta.endpoint_url
    made = task.Task.from_environment(
        "orders", environ, endpoint=endpoint, credentials=aws_local.CREDENTIALS
    )
    recording = Recording(alb.elbv2)
    made = dataclasses.replace(made, elb=recording, analyzer_factory=Analyzer, clock=clock)
    return made, recording


def _rule(alb: Balancer) -> dict[str, Any]:
    (rule,) = [r for r in alb.elbv2.describe_rules(ListenerArn=alb.listener)["Rules"]
               if not r["IsDefault"]]  # fmt: skip
    return dict(rule)


def _weights(alb: Balancer) -> dict[str, int]:
    names = {g["TargetGroupArn"]: g["TargetGroupName"]
             for g in alb.elbv2.describe_target_groups()["TargetGroups"]}  # fmt: skip
    forward = _rule(alb)["Actions"][0]["ForwardConfig"]
    return {names[g["TargetGroupArn"]]: g["Weight"] for g in forward["TargetGroups"]}


def _traffic(alb: Balancer, monolith: int, orders: int, orders_errors: int = 0) -> None:
    """What the load balancer and Lambda publish for a minute of traffic."""
    at = datetime.now(UTC) - timedelta(seconds=1)
    group = {
        "TargetGroup": metrics.target_group_suffix(alb.group_arn(f"{alb.prefix}-monolith")),
        "LoadBalancer": metrics.load_balancer_suffix(alb.load_balancer),
    }
    alias = {"FunctionName": alb.function, "Resource": f"{alb.function}:live"}
    alb.put(metrics.ALB, "RequestCount", group, monolith, at)
    alb.put(metrics.LAMBDA, "Invocations", alias, orders, at)
    alb.put(metrics.LAMBDA, "Errors", alias, orders_errors, at)


def _through(step: dict[str, Any]) -> dict[str, Any]:
    """What the state machine hands the next invocation: the task's output, as JSON."""
    return dict(json.loads(json.dumps(step)))


def test_the_task_walks_the_steps_on_the_live_rule_reading_cloudwatch(alb: Balancer) -> None:
    clock = Clock()
    runner, _ = _task(alb, clock)
    before = _rule(alb)
    fn_group = alb.lambda_group.split(":")[-1].split("/")[1]
    assert _weights(alb) == {f"{alb.prefix}-monolith": 99, fn_group: 1}

    out = _through(runner.run({"route": "orders", "request": {}}))
    state = out["state"]
    # the route is at 1 % already: the first step is that one, judged from here
    assert (state["phase"], state["step"], state["configured"]) == ("progressing", 0, 10)
    assert state["actual"] == 1.0
    assert _weights(alb) == {f"{alb.prefix}-monolith": 99, fn_group: 1}

    _traffic(alb, monolith=990, orders=10)
    clock.now += 30
    out = _through(runner.run(out))  # the origin reading
    assert out["state"]["phase"] == "progressing"
    assert out["state"]["last_reading"]["canary"]["requests"] == 10
    assert Analyzer.windows == []

    _traffic(alb, monolith=5940, orders=60)
    clock.now += 40  # 70 s in the step, 60 canary requests: the step may pass
    out = _through(runner.run(out))
    (window,) = Analyzer.windows
    assert (window.baseline.requests, window.canary.requests) == (5940, 60)
    assert (out["state"]["step"], out["state"]["configured"]) == (1, 100)
    assert out["state"]["actual"] == 10.0
    assert _weights(alb) == {f"{alb.prefix}-monolith": 9, fn_group: 1}  # the 10 % step
    assert out["state"]["history"][-1]["event"] == "step"
    after = _rule(alb)
    assert after["Conditions"] == before["Conditions"]
    assert after["Priority"] == before["Priority"]
    assert after["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {
        "Enabled": True, "DurationSeconds": 3600
    }  # fmt: skip

    _traffic(alb, monolith=900, orders=100)
    clock.now += 70
    out = _through(runner.run(out))
    assert (out["state"]["step"], out["state"]["configured"]) == (2, 500)
    assert sorted(_weights(alb).values()) == [1, 1]  # 50 %


def test_a_failing_canary_is_rolled_back_and_leaves_the_forward_action(alb: Balancer) -> None:
    clock = Clock()
    runner, _ = _task(alb, clock)
    out = _through(runner.run({"route": "orders", "request": {}}))
    _traffic(alb, monolith=90, orders=10)
    out = _through(runner.run(out))
    Analyzer.failing = True
    _traffic(alb, monolith=90, orders=10, orders_errors=10)
    clock.now += 10
    out = _through(runner.run(out))
    assert out["state"]["phase"] == "rolled_back"
    assert out["state"]["actual"] == 0.0
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}  # sticky clients come back too
    again = _through(runner.run(out))  # a finished rollout changes nothing more
    assert again["state"]["phase"] == "rolled_back"
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}


def test_an_abort_rolls_back_and_a_resume_continues_a_paused_rollout(alb: Balancer) -> None:
    clock = Clock()
    runner, _ = _task(alb, clock)
    out = _through(runner.run({"route": "orders", "request": {}}))
    paused = dict(out["state"], phase="paused", paused_from="progressing", paused_reason="x")
    resumed = runner.run({"route": "orders", "request": {"state": paused, "command": "resume"}})
    assert resumed["state"]["phase"] == "progressing"
    assert resumed["state"]["resumed_at"] == clock.now
    aborted = runner.run({"route": "orders", "state": resumed["state"], "command": "abort"})
    assert aborted["state"]["phase"] == "rolled_back"
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}
    with pytest.raises(ConfigError, match="command 'skip'"):
        runner.run({"route": "orders", "state": out["state"], "command": "skip"})


def test_a_cloudwatch_that_fails_is_a_provider_error_and_moves_no_weight(alb: Balancer) -> None:
    clock = Clock()
    runner, _ = _task(alb, clock)
    out = _through(runner.run({"route": "orders", "request": {}}))
    weights = _weights(alb)
    nowhere = f"http://127.0.0.1:{aws_local.free_port()}"
    dead = CloudWatchClient.connect(nowhere, aws_local.CREDENTIALS)
    arms = arms_for_listener(runner.table, runner.elb, alb.listener, alb.prefix)

    def provider_for(state: RolloutState) -> CloudWatchProvider:
        started = datetime.fromtimestamp(state.started, UTC)
        return CloudWatchProvider(dead, arms, started, quantile=None)

    broken = dataclasses.replace(runner, provider_for=provider_for)
    for errors in (1, 2):
        clock.now += 60
        out = _through(broken.run(out))
        assert out["state"]["provider_errors"] == errors
        assert out["state"]["verdicts"][0]["result"] == "provider_error"
        assert out["state"]["phase"] == "progressing"
    clock.now += 60
    out = _through(broken.run(out))  # analysis.provider_errors (3) in a row
    assert out["state"]["phase"] == "paused"
    assert "3 provider errors in a row" in out["state"]["paused_reason"]
    assert _weights(alb) == weights


def test_every_call_the_task_makes_is_allowed_by_its_role_in_the_template(alb: Balancer) -> None:
    clock = Clock()
    runner, recording = _task(alb, clock)
    out = _through(runner.run({"route": "orders", "request": {}}))
    _traffic(alb, monolith=90, orders=10)
    Analyzer.failing = True
    out = _through(runner.run(out))
    clock.now += 10
    _through(runner.run(out))
    template = stepfunctions.template(load_table(alb.routing), "orders", "routing.yaml")
    role = template["Resources"]["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    allowed = {a for s in role["Statement"] for a in s["Action"]}
    assert recording.operations >= {"describe_rules", "modify_rule"}
    assert {iam.ACTIONS[op] for op in recording.operations} <= allowed
    assert "cloudwatch:GetMetricData" in allowed


def test_after_a_rollback_a_new_rollout_brings_the_canary_back_into_the_action(
    alb: Balancer,
) -> None:
    runner, _ = _task(alb, Clock())
    out = _through(runner.run({"route": "orders", "request": {}}))
    runner.run({"route": "orders", "state": out["state"], "command": "abort"})
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}
    fresh = runner.run({"route": "orders", "request": {}})
    assert (fresh["state"]["step"], fresh["state"]["configured"]) == (0, 10)
    fn_group = alb.lambda_group.split(":")[-1].split("/")[1]
    assert _weights(alb) == {f"{alb.prefix}-monolith": 99, fn_group: 1}


def test_a_move_leaves_a_third_target_its_share_and_satisfies_the_mover_seam(
    alb: Balancer,
) -> None:
    rule = _rule(alb)
    groups = {g["TargetGroupName"]: g["TargetGroupArn"]
              for g in alb.elbv2.describe_target_groups()["TargetGroups"]}  # fmt: skip
    hold = next(arn for name, arn in groups.items() if name.startswith("hold-"))
    forward = rule["Actions"][0]["ForwardConfig"]
    forward["TargetGroups"] = [
        {"TargetGroupArn": groups[f"{alb.prefix}-monolith"], "Weight": 5},
        {"TargetGroupArn": alb.lambda_group, "Weight": 1},
        {"TargetGroupArn": hold, "Weight": 4},  # somebody else's group: 40 %
    ]
    actions = [{"Type": "forward", "ForwardConfig": forward}]
    alb.elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=actions)
    moved: Mover = RouteRule(
        ElbClient(alb.elbv2), alb.listener, load_table(alb.routing), "orders", "monolith",
        "orders", alb.prefix,
    )  # fmt: skip
    assert moved.read_back() == 10.0
    assert "orders 20 %" in moved.move(200, "test")
    assert moved.read_back() == 20.0
    assert [g["Weight"] for g in _rule(alb)["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [
        2,
        1,
        2,
    ]  # fmt: skip  - monolith 40 %, orders 20 %, the other group still 40 %
    with pytest.raises(AwsError, match="monolith cannot take the rest of 70 %"):
        moved.move(700, "test")
    assert moved.read_back() == 20.0


def test_the_lambda_entry_point_reads_its_environment_and_starts_the_rollout(
    alb: Balancer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = alb.cloudwatch.meta.endpoint_url
    for name, value in {**aws_local.local_environment(endpoint), task.ENV_ROUTING:
                        str(alb.routing), task.ENV_LISTENER: alb.listener,
                        task.ENV_PREFIX: alb.prefix}.items():  # fmt: skip
        monkeypatch.setenv(name, value)  # as the function's configuration sets them
    out = task.handler({"route": "orders", "request": {}}, None)
    assert (out["route"], out["state"]["phase"], out["state"]["step"]) == (
        "orders", "progressing", 0
    )  # fmt: skip
    # the analysis itself (facade.rollout.analysis) judges what CloudWatch counted
    _traffic(alb, monolith=990, orders=10)
    out = _through(task.handler(out, None))
    _traffic(alb, monolith=2970, orders=30, orders_errors=6)  # 20 % of the canary's requests
    out = _through(task.handler(out, None))
    assert out["state"]["phase"] == "rolled_back", out["state"]["reason"]
    assert out["state"]["reason"].startswith(("errors: canary 20 %", "critical: "))
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}
    aborted = task.handler({"route": "orders", "state": out["state"], "command": "abort"}, None)
    assert aborted["state"]["phase"] == "rolled_back"  # already: nothing more to do
    assert _weights(alb) == {f"{alb.prefix}-monolith": 1}
    with pytest.raises(ConfigError, match="names no route"):
        task.handler({"request": {}}, None)
    monkeypatch.delenv(task.ENV_LISTENER)
    with pytest.raises(ConfigError, match=r"\$STRANGLER_ALB_LISTENER is not set"):
        task.handler({"route": "orders"}, None)
