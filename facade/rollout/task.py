"""The task of an unattended rollout on AWS: one analysis per invocation, called in a loop
by the Step Functions state machine of ``strangler render rollout ROUTE``.

The state machine holds the rollout's state (``RolloutState`` as JSON) and hands it to
each invocation; the task returns the next one::

    in:   {"route": ROUTE, "state": STATE | null, "command": "resume" | "abort" | null}
          (the first invocation gets the execution's input as {"route", "request": {…}})
    out:  {"route": ROUTE, "state": STATE}      the machine chooses on state.phase

One invocation: read both arms from CloudWatch (cumulative since the rollout started;
the difference from the last reading is this interval's window), judge the window with
the same analysis as ``strangler rollout``, ask the same engine (``engine.decide``), and
when the decision moves a weight, change the route's ALB rule — only the weights of its
forward action (``facade.aws.route_rule``; at 0 % the canary's target group leaves it, so
sticky clients come back too) — and read the rule back: a weight AWS does not show
pauses the rollout. The change is idempotent (set this share), and the
state the task got is the state before it: when an invocation fails and Step Functions
retries it, the retry makes the same change at most once more, never a second step.

What ``strangler rollout`` does and the task does not: the pre-checks (commands on the
controller's machine) are not run — run them before starting the execution; the data
gates (they read the sync streams with the routing file's ``commands``) are not judged;
routing.yaml is not edited — after the execution, ``strangler shift`` (or ``promote``)
the route to where it ended and commit, or ``strangler drift`` will show the difference.

The Lambda function finds the routing file packaged beside the code
(``$STRANGLER_ROUTING``, default ``routing.yaml``), the listener in
``$STRANGLER_ALB_LISTENER`` and the target group prefix in ``$STRANGLER_PREFIX``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facade.aws import alb
from facade.aws.client import ElbClient
from facade.aws.cloudwatch import CloudWatchClient
from facade.aws.route_rule import RouteRule
from facade.exceptions import AwsError, ConfigError
from facade.rollout.cloudwatch import LISTENER_ENV, provider_since
from facade.rollout.controller import AnalyzerFactory, default_analyzer
from facade.rollout.engine import Action, Phase, RolloutState, decide, first_step
from facade.rollout.plan import RolloutPlan
from facade.rollout.providers import MetricsProvider, ProviderError
from facade.rollout.samples import ArmCounts, Result, Verdict, Window
from facade.routing.loader import load_table
from facade.routing.model import SHARE_TOTAL, RoutingTable

HANDLER = "facade.rollout.task.handler"
ENV_ROUTING = "STRANGLER_ROUTING"
ENV_LISTENER = LISTENER_ENV
ENV_PREFIX = "STRANGLER_PREFIX"
COMMANDS = ("resume", "abort")

ProviderFor = Callable[[RolloutState], MetricsProvider]


def _counts(data: Mapping[str, Any] | None) -> ArmCounts | None:
    if not data:
        return None
    return ArmCounts(
        requests=int(data["requests"]),
        errors=int(data["errors"]),
        quantile_seconds=data.get("quantile_seconds"),
    )


def _plain(counts: ArmCounts) -> dict[str, Any]:
    return {
        "requests": counts.requests,
        "errors": counts.errors,
        "quantile_seconds": counts.quantile_seconds,
    }


@dataclass
class Task:
    """One route's rollout on one listener; ``provider_for`` gives the metrics provider of
    a rollout (CloudWatch since its start, in ``from_environment``)."""

    table: RoutingTable
    route: str
    elb: ElbClient
    listener: str
    provider_for: ProviderFor
    prefix: str = alb.DEFAULT_PREFIX
    analyzer_factory: AnalyzerFactory = default_analyzer
    clock: Callable[[], float] = time.time

    @property
    def plan(self) -> RolloutPlan:
        plan = self.table.route(self.route).rollout
        if plan is None:
            raise ConfigError(f"{self.table.source}: route {self.route!r} has no rollout block")
        return plan

    def rule(self, state: RolloutState) -> RouteRule:
        """The route's rule on the listener, moved between the state's two arms."""
        return RouteRule(
            self.elb, self.listener, self.table, self.route, state.baseline, state.canary,
            self.prefix,
        )  # fmt: skip

    # -- one invocation -------------------------------------------------------------------

    def run(self, event: Mapping[str, Any]) -> dict[str, Any]:
        request = event.get("request") or {}
        given = event.get("state", request.get("state"))
        command = event.get("command", request.get("command"))
        if command is not None and command not in COMMANDS:
            raise ConfigError(f"command {command!r}: one of {', '.join(COMMANDS)}")
        plan = self.plan
        now = self.clock()
        if given:
            state = RolloutState.from_dict(dict(given))
        else:
            state = RolloutState(self.route, plan.baseline, plan.to, started=now)
            state.configured = round(self.rule(state).read_back() * 10)
            shown = f"{plan.to} at {state.configured / 10:g} % (on AWS)"
            state.record(now, "started", reason=shown)
        if command == "abort" and not state.phase.finished:
            self._rollback(state, "aborted")
        elif command == "resume" and state.phase is Phase.PAUSED:
            state.phase = Phase(state.paused_from or Phase.PROGRESSING)
            if state.phase is Phase.PAUSED or state.step < 0:
                state.phase = Phase.PRE_CHECKS if state.step < 0 else Phase.PROGRESSING
            state.paused_reason = None
            state.resumed_at = now
            state.provider_errors = 0
            state.record(now, "resumed")
        elif state.phase is Phase.PRE_CHECKS:
            if plan.pre_checks:
                state.record(now, "pre_checks", reason="not run by the AWS task")
            self._enter_step(state, first_step(plan, state.configured), "start")
        elif state.phase in (Phase.PROGRESSING, Phase.BAKING):
            self._analyse(state)
        return {"route": self.route, "state": state.as_dict()}

    def _set(self, state: RolloutState, share: int, why: str) -> bool:
        rule = self.rule(state)
        try:
            rule.move(share, f"rollout #{state.seq + 1}")
            actual = rule.read_back()
        except AwsError as exc:
            if share == 0:
                raise  # a rollback must complete: Step Functions retries the task
            self._pause(state, f"could not set {state.canary} to {share / 10:g} %: {exc}")
            return False
        state.actual = actual
        if abs(actual - share / 10) > 0.05:
            why = f"AWS reads back {actual:g} % for {state.canary}, not {share / 10:g} %"
            if share == 0:
                raise AwsError(f"route {self.route!r}: {why}")
            self._pause(state, why)
            return False
        state.configured = share
        state.seq += 1
        state.record(self.clock(), "weight", reason=why, share=share / 10)
        return True

    def _enter_step(self, state: RolloutState, index: int, why: str) -> None:
        if self._set(state, self.plan.steps[index].share, why):
            state.step = index
            state.phase = Phase.PROGRESSING
            state.step_started = self.clock()
            state.step_baseline = state.step_canary = state.step_canary_errors = 0
            state.resumed_at = None
            state.record(
                state.step_started, "step", reason=why, weight=self.plan.steps[index].percent
            )

    def _pause(self, state: RolloutState, why: str) -> None:
        state.paused_from = str(state.phase)
        state.phase = Phase.PAUSED
        state.paused_reason = why
        state.reason = why
        state.record(self.clock(), "paused", reason=why)

    def _rollback(self, state: RolloutState, why: str) -> None:
        self._set(state, 0, why)
        state.phase = Phase.ROLLED_BACK
        state.reason = why
        state.record(self.clock(), "rolled_back", reason=why)

    def _read(self, state: RolloutState) -> tuple[Window | None, Verdict | None]:
        try:
            baseline, canary = self.provider_for(state).read(
                self.route, state.baseline, state.canary
            )
        except ProviderError as exc:
            state.provider_errors += 1
            return None, Verdict("provider", Result.PROVIDER_ERROR, str(exc))
        state.provider_errors = 0
        last = state.last_reading or {}
        then_b, then_c = _counts(last.get("baseline")), _counts(last.get("canary"))
        now = self.clock()
        state.last_reading = {"baseline": _plain(baseline), "canary": _plain(canary), "at": now}
        if then_b is None or then_c is None:
            return None, None  # the first reading is the origin
        seconds = now - float(last.get("at", now))
        return Window(baseline.minus(then_b), canary.minus(then_c), seconds), None

    def _analyse(self, state: RolloutState) -> None:
        plan = self.plan
        analyzer = self.analyzer_factory(plan.analysis, state.analyzer or None)
        analyzer.start_step(state.step)
        window, failure = self._read(state)
        if window is not None:
            analyzer.add(window)
            state.step_baseline += window.baseline.requests
            state.step_canary += window.canary.requests
            state.step_canary_errors += window.canary.errors
            total = state.step_baseline + state.step_canary
            state.observed = 100.0 * state.step_canary / total if total else None
        step = plan.steps[state.step]
        verdicts = (
            [failure]
            if failure is not None
            else analyzer.verdicts(state.step_canary, state.step_baseline, step.min_sample)
        )
        state.analyzer = analyzer.to_dict()
        decision = decide(plan, state, verdicts, [], self.clock())
        state.verdicts = [v.as_dict() for v in verdicts]
        state.gates = []
        state.reason = decision.reason
        if decision.action is Action.ROLLBACK:
            self._rollback(state, decision.reason)
        elif decision.action is Action.PAUSE:
            self._pause(state, decision.reason)
        elif decision.action is Action.ADVANCE:
            self._enter_step(state, state.step + 1, decision.reason)
        elif decision.action is Action.BAKE:
            state.phase = Phase.BAKING
            state.step_started = self.clock()
            state.record(state.step_started, "baking", reason=decision.reason, seconds=plan.bake)
        elif decision.action is Action.PROMOTE and self._set(state, SHARE_TOTAL, decision.reason):
            state.phase = Phase.PROMOTED
            state.record(self.clock(), "promoted", reason=decision.reason)

    # -- on AWS ---------------------------------------------------------------------------

    @classmethod
    def from_environment(
        cls,
        route: str,
        environ: Mapping[str, str] = os.environ,
        *,
        endpoint: str | None = None,
        credentials: Mapping[str, Any] | None = None,
    ) -> Task:
        """The task as the Lambda function runs it: the packaged routing file, the
        listener and prefix of its environment, boto3's configuration (or a stand-in)."""
        listener = environ.get(ENV_LISTENER)
        if not listener:
            raise ConfigError(f"${ENV_LISTENER} is not set: the ARN of the ALB listener")
        table = load_table(Path(environ.get(ENV_ROUTING, "routing.yaml")))
        prefix = environ.get(ENV_PREFIX) or alb.DEFAULT_PREFIX
        elb = ElbClient.connect(endpoint, credentials)
        cloudwatch = CloudWatchClient.connect(endpoint, credentials)
        plan = table.route(route).rollout
        if plan is None:
            raise ConfigError(f"{table.source}: route {route!r} has no rollout block")

        def provider_for(state: RolloutState) -> MetricsProvider:
            return provider_since(table, plan, state.started, elb, cloudwatch, listener, prefix)

        return cls(table, route, elb, listener, provider_for, prefix)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The Lambda entry point (``facade.rollout.task.handler``)."""
    route = event.get("route")
    if not isinstance(route, str):
        raise ConfigError(f"the task's input names no route: {json.dumps(event)[:200]}")
    return Task.from_environment(route).run(event)


__all__ = ["ENV_LISTENER", "ENV_PREFIX", "ENV_ROUTING", "HANDLER", "Task", "handler"]
