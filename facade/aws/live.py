"""What the ALB listener holds now, read back into the shapes of ``facade.aws.alb``.

Rules are read with their tags: a rule strangler created carries ``strangler:route``.
A rule without it belongs to a route when its conditions are exactly the route's (rules
the CloudFormation template created carry no tags); any other rule is somebody else's
and is left alone. Target groups are mapped back to backends by ARN; a rule whose shape
strangler does not write (other condition types, other actions, unknown target groups)
reads as ``body=None``: it differs from anything desired.

``configured_shares`` reads one route's weights back — what AWS will actually apply —
for comparing with the file after an apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from facade.aws.alb import (
    ROUTE_TAG,
    Action,
    Condition,
    FixedAnswer,
    Forward,
    Listener,
    RuleBody,
    same_conditions,
)
from facade.aws.client import ElbClient
from facade.exceptions import CheckFailed
from facade.routing.loader import DEFAULT_ROUTE
from facade.routing.model import Route


@dataclass(frozen=True)
class LiveRule:
    arn: str
    priority: int
    route: str | None  # the strangler:route tag
    body: RuleBody | None  # None: a shape strangler does not write
    raw: str  # {"Conditions": ..., "Actions": ...} as AWS answered, JSON: to put it back

    def raw_parts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        parts = json.loads(self.raw)
        return parts["Conditions"], parts["Actions"]


@dataclass(frozen=True)
class LiveListener:
    arn: str
    rules: tuple[LiveRule, ...]  # non-default rules, priority order
    default: Forward | None
    default_raw: str  # DefaultActions as AWS answered, JSON
    groups: dict[str, str]  # backend → ARN of the target groups that exist


def _condition(raw: dict[str, Any]) -> Condition | None:
    field = raw.get("Field")
    if field == "path-pattern":
        values = (raw.get("PathPatternConfig") or {}).get("Values") or raw.get("Values") or []
        return Condition(field, tuple(values))
    if field == "http-request-method":
        return Condition(field, tuple((raw.get("HttpRequestMethodConfig") or {}).get("Values", [])))
    if field == "http-header":
        config = raw.get("HttpHeaderConfig") or {}
        return Condition(
            field, tuple(config.get("Values", [])), str(config["HttpHeaderName"]).lower()
        )
    return None


def _action(actions: list[dict[str, Any]], backends: dict[str, str]) -> Action | None:
    if len(actions) == 1 and actions[0].get("Type") == "fixed-response":
        config = actions[0].get("FixedResponseConfig") or {}
        return FixedAnswer(
            int(config.get("StatusCode") or 0),
            str(config.get("ContentType") or "text/plain"),
            str(config.get("MessageBody") or ""),
        )
    return _forward(actions, backends)


def _forward(actions: list[dict[str, Any]], backends: dict[str, str]) -> Forward | None:
    if len(actions) != 1 or actions[0].get("Type") != "forward":
        return None
    action = actions[0]
    config = action.get("ForwardConfig")
    if config is None:
        groups = [{"TargetGroupArn": action.get("TargetGroupArn"), "Weight": 1}]
        sticky: dict[str, Any] = {}
    else:
        groups = config.get("TargetGroups", [])
        sticky = config.get("TargetGroupStickinessConfig") or {}
    targets = []
    for group in groups:
        backend = backends.get(str(group.get("TargetGroupArn")))
        if backend is None:
            return None
        targets.append((backend, int(group.get("Weight") or 0)))
    duration = int(sticky["DurationSeconds"]) if sticky.get("Enabled") else None
    return Forward(tuple(targets), duration)


def _body(raw: dict[str, Any], backends: dict[str, str]) -> RuleBody | None:
    conditions = [_condition(c) for c in raw.get("Conditions", [])]
    action = _action(raw.get("Actions", []), backends)
    if action is None or any(c is None for c in conditions):
        return None
    return RuleBody(tuple(c for c in conditions if c is not None), action)


def _writable(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions as AWS takes them back: a ``*Config`` without the legacy ``Values``."""
    return [
        {k: v for k, v in c.items() if k != "Values" or not any(n.endswith("Config") for n in c)}
        for c in conditions
    ]


def read(client: ElbClient, listener_arn: str, want: Listener) -> LiveListener:
    groups = {g.backend: g.arn for g in want.target_groups if g.arn}
    named = client.target_groups_named([g.name for g in want.target_groups if not g.arn])
    for group in want.target_groups:
        if not group.arn and group.name in named:
            groups[group.backend] = named[group.name]
    backends = {arn: backend for backend, arn in groups.items()}
    listener = client.listener(listener_arn)
    raw_rules = [r for r in client.rules(listener_arn) if not r.get("IsDefault")]
    tags = client.tags([r["RuleArn"] for r in raw_rules]) if raw_rules else {}
    rules = sorted(
        (
            LiveRule(
                arn=r["RuleArn"],
                priority=int(r["Priority"]),
                route=tags.get(r["RuleArn"], {}).get(ROUTE_TAG),
                body=_body(r, backends),
                raw=json.dumps(
                    {"Conditions": _writable(r.get("Conditions", [])), "Actions": r["Actions"]}
                ),
            )
            for r in raw_rules
        ),
        key=lambda rule: rule.priority,
    )
    defaults = listener.get("DefaultActions", [])
    return LiveListener(
        arn=listener_arn,
        rules=tuple(rules),
        default=_forward(defaults, backends),
        default_raw=json.dumps(defaults),
        groups=groups,
    )


def route_action(listener: LiveListener, want: Listener, route: str) -> Action | None:
    """The action the listener applies to ``route`` now: its default action, the rule
    tagged with the route, or else an untagged rule with the route's exact conditions (as
    ``plan`` adopts one); None when there is none or strangler cannot read it."""
    if route == DEFAULT_ROUTE:
        return listener.default
    tagged = next((r for r in listener.rules if r.route == route), None)
    if tagged is not None:
        return tagged.body.action if tagged.body else None
    wanted = next((r for r in want.rules if r.route == route), None)
    for rule in listener.rules:
        if (
            wanted is not None
            and rule.route is None
            and rule.body is not None
            and same_conditions(rule.body.conditions, wanted.body.conditions)
        ):
            return rule.body.action
    return None


def configured_shares(listener: LiveListener, want: Listener, route: Route) -> dict[str, float]:
    """The percent per backend the listener gives ``route`` now: every backend the route
    lists (0 when its group is not in the forward action) and any other the action names.
    A deny rule has none. ``CheckFailed`` when the listener has no rule for the route."""
    action = route_action(listener, want, route.name)
    if action is None:
        raise CheckFailed(
            f"the listener {listener.arn} has no rule strangler can read for route "
            f"{route.name!r}: run `strangler plan` to see why"
        )
    shares = dict.fromkeys((t.backend for t in route.targets), 0.0)
    shares.update(action.shares())
    return shares
