"""Carrying out a plan. ``plan`` and ``apply`` differ only in the executor.

``DisplayExecutor`` prints each step. ``AwsExecutor`` makes each step's calls in the
plan's order and remembers how to undo it; when a call fails it undoes what it had done,
newest first, and raises ``ApplyFailed`` saying so — AWS is left as it was. If an undo
fails too, the message says which changes remain, so that a person can finish the job
(``strangler plan`` shows what still differs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from facade.aws.alb import ROUTE_TAG
from facade.aws.client import ElbClient
from facade.aws.plan import (
    CreateRule,
    CreateTargetGroup,
    DeleteRule,
    ModifyDefault,
    ModifyRule,
    Plan,
    SetPriorities,
    Step,
)
from facade.exceptions import ApplyFailed, AwsError

Echo = Callable[[str], None]
NO_CHANGES = "no changes: the listener is what the routing file says"
Undo = Callable[[], object]


class DisplayExecutor:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo

    def execute(self, plan: Plan) -> None:
        if not plan.steps:
            self.echo(NO_CHANGES)
        for line in plan.describe():
            self.echo(line)


class AwsExecutor:
    def __init__(self, client: ElbClient, echo: Echo) -> None:
        self.client = client
        self.echo = echo

    def execute(self, plan: Plan) -> None:
        arns = dict(plan.groups)
        undo: list[tuple[str, Undo]] = []
        for number, step in enumerate(plan.steps, 1):
            try:
                undo.append((step.describe(), self._run(step, plan.listener, arns)))
            except AwsError as exc:
                self._fail(number, step, exc, undo)
            self.echo(step.describe())
        if not plan.steps:
            self.echo(NO_CHANGES)

    def _fail(self, number: int, step: Step, exc: AwsError, undo: list[tuple[str, Undo]]) -> None:
        left: list[str] = []
        for summary, revert in reversed(undo):
            try:
                revert()
            except AwsError as undo_error:
                left.append(f"{summary} ({undo_error})")
        where = f"step {number} ({step.describe()}) failed: {exc}"
        if not left:
            done = (
                f"undid the {len(undo)} change(s) before it: AWS is as it was"
                if undo
                else ("nothing had been changed")
            )
            raise ApplyFailed(f"{where}; {done}", undone=True) from exc
        raise ApplyFailed(
            f"{where}; could not undo: {'; '.join(left)} — run `strangler plan` to see what "
            "differs",
            undone=False,
        ) from exc

    def _run(self, step: Step, listener: str, arns: dict[str, Any]) -> Undo:
        client = self.client
        if isinstance(step, CreateTargetGroup):
            arn = client.create_target_group(json.loads(step.spec))
            arns[step.backend] = arn
            if step.targets:
                try:
                    client.register_targets(arn, [{"Id": i, "Port": p} for i, p in step.targets])
                except AwsError:
                    client.delete_target_group(arn)
                    raise
            return lambda: client.delete_target_group(arn)
        if isinstance(step, DeleteRule):
            conditions, actions = step.rule.raw_parts()
            client.delete_rule(step.rule.arn)
            tags = {ROUTE_TAG: step.route}
            return lambda: client.create_rule(
                listener, step.rule.priority, conditions, actions, tags
            )
        if isinstance(step, SetPriorities):
            done: list[tuple[str, int]] = []

            def back() -> None:
                for arn, old in reversed(done):
                    client.set_priorities([(arn, old)])

            for arn, _, old, to in step.moves:
                try:
                    client.set_priorities([(arn, to)])
                except AwsError:
                    back()
                    raise
                done.append((arn, old))
            return back
        if isinstance(step, ModifyRule):
            conditions, actions = step.rule.raw_parts()
            client.modify_rule(
                step.rule.arn,
                [c.as_aws() for c in step.after.conditions],
                step.after.action.as_aws(arns),
            )
            return lambda: client.modify_rule(step.rule.arn, conditions, actions)
        if isinstance(step, CreateRule):
            body = step.rule.body
            arn = client.create_rule(
                listener,
                step.rule.priority,
                [c.as_aws() for c in body.conditions],
                body.action.as_aws(arns),
                {ROUTE_TAG: step.rule.route},
            )
            return lambda: client.delete_rule(arn)
        if isinstance(step, ModifyDefault):
            client.modify_default(listener, step.after.as_aws(arns))
            before = json.loads(step.before_raw)
            return lambda: client.modify_default(listener, before)
        raise TypeError(f"unknown step {step!r}")
