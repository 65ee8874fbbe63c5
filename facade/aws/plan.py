"""Desired vs live listener → a plan: the changes, as data, in the order they are safe.

1. create the target groups the rules will use (instance and ip groups; a Lambda's group
   needs an invoke permission, so it comes from ``strangler render alb`` once);
2. delete the rules of routes no longer in the file;
3. move rules whose priority changed, one at a time, each onto a free priority;
4. modify rules whose conditions or weights changed — a weight change is one
   ``modify_rule`` of one rule;
5. create the rules of new routes (tagged ``strangler:route``);
6. change the listener's default action.

Weights are compared as percentages, so 90/10 written by hand as 900/100 is no change.
An empty plan means live AWS is what routing.yaml says (no drift). A rule strangler does
not own that sits on a priority the file needs is an error, not something to move.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facade.aws.alb import (
    Action,
    FixedAnswer,
    Forward,
    Listener,
    Rule,
    RuleBody,
    TargetGroup,
    same_conditions,
)
from facade.aws.live import LiveListener, LiveRule
from facade.exceptions import ConfigError
from facade.routing.loader import PRIORITY_MAX
from facade.routing.model import BackendKind


def same_forward(a: Action | None, b: Action | None) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, FixedAnswer) or isinstance(b, FixedAnswer):
        return a == b
    return a.stickiness == b.stickiness and a.shares() == b.shares()


def same_body(a: RuleBody | None, b: RuleBody | None) -> bool:
    if a is None or b is None:
        return a is b
    return same_conditions(a.conditions, b.conditions) and same_forward(a.action, b.action)


def _shift(before: Action | None, after: Action) -> str:
    if before is None:
        return "(unreadable) → " + after.describe()
    if isinstance(before, FixedAnswer) or isinstance(after, FixedAnswer):
        return before.describe() + " → " + after.describe()
    old, new = before.shares(), after.shares()
    moves = []
    for b in dict.fromkeys([*old, *new]):
        if b not in new:  # a backend with no share leaves the forward action
            moves.append(f"{b} {old[b]:g} % → out of the action")
        elif b not in old:
            moves.append(f"{b} into the action at {new[b]:g} %")
        elif old[b] != new[b]:
            moves.append(f"{b} {old[b]:g} → {new[b]:g} %")
    if before.stickiness != after.stickiness:
        moves.append(f"stickiness {before.stickiness or 'off'} → {after.stickiness or 'off'}")
    return ", ".join(moves) or after.describe()


@dataclass(frozen=True)
class CreateTargetGroup:
    backend: str
    name: str
    spec: str  # create_target_group's arguments, JSON
    targets: tuple[tuple[str, int], ...]  # (instance id, port) to register

    def describe(self) -> str:
        return f"+ target group {self.name} for backend {self.backend}"


@dataclass(frozen=True)
class DeleteRule:
    route: str
    rule: LiveRule

    def describe(self) -> str:
        return f"- rule {self.route} (priority {self.rule.priority})"


@dataclass(frozen=True)
class SetPriorities:
    """Rules to renumber, one move at a time, in this order (each onto a free priority)."""

    moves: tuple[tuple[str, str, int, int], ...]  # (rule ARN, route, from, to)

    def describe(self) -> str:
        return "~ priorities: " + ", ".join(f"{r} {a} → {b}" for _, r, a, b in self.moves)


@dataclass(frozen=True)
class ModifyRule:
    route: str
    rule: LiveRule
    after: RuleBody

    def describe(self) -> str:
        before = self.rule.body
        parts = []
        if before is None or not same_conditions(before.conditions, self.after.conditions):
            parts.append("conditions → " + "; ".join(c.describe() for c in self.after.conditions))
        if before is None or not same_forward(before.action, self.after.action):
            parts.append(_shift(before.action if before else None, self.after.action))
        return f"~ rule {self.route}: " + ", ".join(parts)


@dataclass(frozen=True)
class CreateRule:
    rule: Rule

    def describe(self) -> str:
        return (
            f"+ rule {self.rule.route} (priority {self.rule.priority}): {self.rule.body.describe()}"
        )


@dataclass(frozen=True)
class ModifyDefault:
    before: Forward | None
    before_raw: str
    after: Forward

    def describe(self) -> str:
        return "~ default action: " + _shift(self.before, self.after)


Step = CreateTargetGroup | DeleteRule | SetPriorities | ModifyRule | CreateRule | ModifyDefault


@dataclass(frozen=True)
class Plan:
    listener: str
    steps: tuple[Step, ...]
    groups: Mapping[str, str] = field(default_factory=dict)  # backend → ARN, existing

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]

    def as_dict(self) -> dict[str, Any]:
        return {
            "listener": self.listener,
            "changes": [
                {"action": type(step).__name__, "summary": step.describe()} for step in self.steps
            ],
        }


def _create_spec(
    group: TargetGroup, vpc: str | None
) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]]:
    if group.kind is BackendKind.LAMBDA:
        raise ConfigError(
            f"target group {group.name} of Lambda backend {group.backend} does not exist: create "
            "it once with the template of `strangler render alb` (it registers the function "
            "and the invoke permission), or set its aws.target_group_arn"
        )
    vpc_id = group.aws.get("vpc_id") or vpc
    if not vpc_id:
        raise ConfigError(
            f"target group {group.name} of backend {group.backend} does not exist and there is "
            f"no VPC to create it in: set backends.{group.backend}.aws.vpc_id or pass --vpc"
        )
    instance = group.kind is BackendKind.MONOLITH
    port = int(group.aws.get("port", 80)) if instance else int(group.aws["container_port"])
    spec = {
        "Name": group.name,
        "Protocol": "HTTP",
        "Port": port,
        "VpcId": str(vpc_id),
        "TargetType": "instance" if instance else "ip",
        "HealthCheckEnabled": True,
        "HealthCheckPath": str(group.aws.get("health_check", "/")),
        "Matcher": {"HttpCode": str(group.aws.get("health_codes", "200-399"))},
        "Tags": [{"Key": "strangler:backend", "Value": group.backend}],
    }
    targets = tuple((str(i), port) for i in group.aws.get("instances", [])) if instance else ()
    return spec, targets


def _one_at_a_time(
    moves: list[tuple[str, str, int, int]], occupied: set[int], needed: set[int]
) -> tuple[tuple[str, str, int, int], ...]:
    """Order the moves so that each lands on a free priority (a rule that must take the
    place of another moves after it); a cycle parks one rule on a spare priority first."""
    pending, ordered, occupied = list(moves), [], set(occupied)
    while pending:
        ready = next((m for m in pending if m[3] not in occupied), None)
        if ready is None:
            arn, route, old, new = pending.pop(0)
            spare = next(p for p in range(PRIORITY_MAX, 0, -1) if p not in occupied | needed)
            ordered.append((arn, route, old, spare))
            occupied.discard(old)
            occupied.add(spare)
            pending.append((arn, route, spare, new))
            continue
        pending.remove(ready)
        ordered.append(ready)
        occupied.discard(ready[2])
        occupied.add(ready[3])
    return tuple(ordered)


def make_plan(want: Listener, live: LiveListener, vpc: str | None = None) -> Plan:
    steps: list[Step] = []
    for group in want.target_groups:
        if group.backend not in live.groups:
            spec, targets = _create_spec(group, vpc)
            steps.append(CreateTargetGroup(group.backend, group.name, json.dumps(spec), targets))

    wanted = {rule.route: rule for rule in want.rules}
    owned: dict[str, LiveRule] = {}
    unclaimed: list[LiveRule] = []
    for rule in live.rules:
        if rule.route is not None and rule.route not in owned:
            owned[rule.route] = rule
        else:
            unclaimed.append(rule)
    foreign: list[LiveRule] = []
    for loose in unclaimed:  # untagged (e.g. from the template): claim by conditions
        match = next(
            (
                name
                for name, w in wanted.items()
                if name not in owned
                and loose.body is not None
                and same_conditions(loose.body.conditions, w.body.conditions)
            ),
            None,
        )
        if match is not None and loose.route is None:
            owned[match] = loose
        else:
            foreign.append(loose)

    deletes = [DeleteRule(name, rule) for name, rule in owned.items() if name not in wanted]
    steps.extend(deletes)
    taken = {rule.priority: rule for rule in foreign}
    moves: list[tuple[str, str, int, int]] = []
    modifies: list[Step] = []
    creates: list[Step] = []
    for name, target in wanted.items():
        if target.priority in taken:
            other = taken[target.priority]
            raise ConfigError(
                f"route {name} needs priority {target.priority}, held by a rule strangler does "
                f"not own ({other.arn}); move or delete that rule, or give the route another "
                "priority"
            )
        current = owned.get(name)
        if current is None:
            creates.append(CreateRule(target))
            continue
        if current.priority != target.priority:
            moves.append((current.arn, name, current.priority, target.priority))
        if not same_body(current.body, target.body):
            modifies.append(ModifyRule(name, current, target.body))
    if moves:
        kept = {r.priority for r in live.rules} - {d.rule.priority for d in deletes}
        needed = {r.priority for r in want.rules}
        steps.append(SetPriorities(_one_at_a_time(moves, kept, needed)))
    steps.extend(modifies)
    steps.extend(creates)
    if not same_forward(live.default, want.default):
        steps.append(ModifyDefault(live.default, live.default_raw, want.default))
    return Plan(live.arn, tuple(steps), dict(live.groups))
