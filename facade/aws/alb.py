"""The listener routing.yaml describes, in ALB's terms: the desired state.

Every derived ALB artefact — the CloudFormation template, the live plan — starts from
``desired(table)``: one ``Rule`` per route, in the table's priority order (the order the
local proxy's matcher tries them), with ALB's condition types and a weighted forward
action whose integer weights come from ``alb_weights`` (so reading them back gives the
route's percentages exactly). Target groups are named per backend; a backend may name an
existing one instead (``aws.target_group_arn``).

A backend a route lists at 0 % is left out of the rule's forward action, not kept in it
at weight 0. Locally a sticky cookie naming a backend with no weight is ignored
(``facade.proxy.choice``); AWS documents no such rule for a weight-0 target group, so a
rolled-back backend leaves the action, and a sticky client lands on a group that is
still in it — the same decision for the same request. Its target group stays (every
backend a route lists has one), so shifting traffic back needs no new group.

A shadowed route forwards everything to the facade's own target group (``facade``, the
``render ecs`` service's): ALB cannot mirror requests, so the facade makes the copies
and splits the route between its targets itself, until the shadow block is removed.

What ALB cannot do is refused here, never approximated: a ``stable_key`` route (ALB has
no hash-by-header routing; use ``stickiness``), a ``url`` backend without a target group
ARN, the tester override header (a local testing aid: keep ``facade.override`` off in a
file that is deployed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind, Route, RoutingTable, alb_weights

TARGET_GROUP_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
DEFAULT_PREFIX = "strangler"
FACADE = "facade"  # the facade's own target group, where shadowed routes forward
ROUTE_TAG = "strangler:route"


@dataclass(frozen=True)
class Condition:
    """One ALB rule condition; ``values`` as ALB keeps them."""

    field: str  # path-pattern | http-request-method | http-header
    values: tuple[str, ...]
    header: str | None = None  # for http-header, lower-cased

    def as_aws(self) -> dict[str, Any]:
        if self.field == "path-pattern":
            return {"Field": self.field, "PathPatternConfig": {"Values": list(self.values)}}
        if self.field == "http-request-method":
            return {"Field": self.field, "HttpRequestMethodConfig": {"Values": list(self.values)}}
        return {
            "Field": self.field,
            "HttpHeaderConfig": {"HttpHeaderName": self.header, "Values": list(self.values)},
        }

    def describe(self) -> str:
        shown = ", ".join(self.values)
        if self.field == "path-pattern":
            return f"path {shown}"
        if self.field == "http-request-method":
            return f"method {shown}"
        return f"header {self.header}: {shown}"


@dataclass(frozen=True)
class Forward:
    """A weighted forward action: (backend, ALB weight 0-999) per target group."""

    targets: tuple[tuple[str, int], ...]
    stickiness: int | None = None  # seconds; None: not sticky

    def shares(self) -> dict[str, float]:
        """Percent per backend, as the weights say."""
        total = sum(w for _, w in self.targets) or 1
        return {b: round(w * 100 / total, 1) for b, w in self.targets}

    def describe(self) -> str:
        parts = [f"{b} {p:g} %" for b, p in self.shares().items()]
        sticky = f", sticky {self.stickiness} s" if self.stickiness else ""
        return ", ".join(parts) + sticky

    def as_aws(self, arns: dict[str, Any]) -> list[dict[str, Any]]:
        """ALB's action list, with each backend's target group from ``arns``."""
        stickiness: dict[str, Any] = {"Enabled": self.stickiness is not None}
        if self.stickiness is not None:
            stickiness["DurationSeconds"] = self.stickiness
        return [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": arns[b], "Weight": w} for b, w in self.targets
                    ],
                    "TargetGroupStickinessConfig": stickiness,
                },
            }
        ]


@dataclass(frozen=True)
class FixedAnswer:
    """ALB's fixed-response action: a deny rule (routing.yaml ``fixed_response``)."""

    status: int
    content_type: str
    body: str
    targets: tuple[tuple[str, int], ...] = ()  # forwards to nothing
    stickiness: int | None = None

    def shares(self) -> dict[str, float]:
        return {}

    def describe(self) -> str:
        return f"fixed response {self.status} ({self.content_type})"

    def as_aws(self, arns: dict[str, Any]) -> list[dict[str, Any]]:
        config: dict[str, Any] = {"StatusCode": str(self.status), "ContentType": self.content_type}
        if self.body:
            config["MessageBody"] = self.body
        return [{"Type": "fixed-response", "FixedResponseConfig": config}]


Action = Forward | FixedAnswer


@dataclass(frozen=True)
class RuleBody:
    conditions: tuple[Condition, ...]
    action: Action

    def describe(self) -> str:
        return "; ".join(c.describe() for c in self.conditions) + " → " + self.action.describe()


@dataclass(frozen=True)
class Rule:
    route: str
    priority: int
    body: RuleBody


@dataclass(frozen=True)
class TargetGroup:
    """The target group of one backend: created by us (``name``) or given (``arn``)."""

    backend: str
    kind: BackendKind
    name: str
    arn: str | None  # aws.target_group_arn: use it, create nothing
    aws: dict[str, Any]


def _condition_key(c: Condition) -> tuple[str, str | None, tuple[str, ...]]:
    return (c.field, c.header, tuple(sorted(c.values)))


def same_conditions(a: tuple[Condition, ...], b: tuple[Condition, ...]) -> bool:
    """Whether two rules match the same requests (ALB keeps conditions in any order)."""
    return sorted(map(_condition_key, a)) == sorted(map(_condition_key, b))


@dataclass(frozen=True)
class Listener:
    rules: tuple[Rule, ...]  # priority order
    default: Forward
    target_groups: tuple[TargetGroup, ...]  # of every backend an action uses, table order


def _where(table: RoutingTable, route: Route) -> str:
    return f"{table.source}:{route.line}: routes[{route.name}]" if route.line else table.source


def conditions(route: Route) -> tuple[Condition, ...]:
    found: list[Condition] = []
    if route.match.paths:
        found.append(Condition("path-pattern", route.match.paths))
    if route.match.methods:
        found.append(Condition("http-request-method", route.match.methods))
    for header in route.match.headers:
        found.append(Condition("http-header", header.values, header.name))
    return tuple(found)


def forward(table: RoutingTable, route: Route) -> Forward:
    if route.stable_key is not None:
        raise ConfigError(
            f"{_where(table, route)}: stable_key cannot be expressed on an ALB (it hashes no "
            "header or cookie); use stickiness: {duration: SECONDS} for this route"
        )
    weights = alb_weights(route.targets)
    return Forward(
        # shares add up to 100 %, so at least one target is left
        tuple((t.backend, w) for t, w in zip(route.targets, weights, strict=True) if w),
        route.stickiness.duration if route.stickiness else None,
    )


def action(table: RoutingTable, route: Route) -> Action:
    """The rule's action: forward to the route's targets, or its fixed response; a
    shadowed route's requests all go to the facade's own target group (ALB cannot
    mirror: the facade makes the copies, and splits between the targets itself)."""
    if route.fixed is not None:
        fixed = route.fixed
        return FixedAnswer(fixed.status, fixed.content_type, fixed.body)
    if route.shadow is not None:
        forward(table, route)  # what ALB could not do is refused all the same
        return Forward(((FACADE, 1),), None)
    return forward(table, route)


def facade_target_group(table: RoutingTable, prefix: str) -> TargetGroup:
    """The facade's own target group, for shadowed routes: its tasks (``render ecs``'s
    ``facade`` service) register in it on the public port. Its health check asks for
    ``/__facade/health`` on that port, which the facade itself answers 404 there (the
    admin side is never on the public listener) without calling a backend: an answer
    means the process serves, whatever the backends do."""
    if FACADE in table.backends:
        raise ConfigError(
            f"{table.source}: backends.{FACADE}: the name is the facade's own target group "
            "when routes are shadowed; rename the backend"
        )
    name = _valid_name(table, FACADE, prefix)
    aws: dict[str, Any] = {
        "container_port": table.settings.listen_port,
        "health_check": "/__facade/health",
        "health_codes": "404",
    }
    # in the VPC of the services it fronts (the first backend that names one)
    vpc = next((b.aws["vpc_id"] for b in table.backends.values() if b.aws.get("vpc_id")), None)
    if vpc is not None:
        aws["vpc_id"] = vpc
    return TargetGroup(FACADE, BackendKind.ECS, name, None, aws)


def target_group_name(prefix: str, backend: str) -> str:
    return f"{prefix}-{backend}".replace("_", "-")


def _valid_name(table: RoutingTable, backend: str, prefix: str) -> str:
    """The target group name we create for ``backend``, or ``ConfigError`` where AWS
    would refuse it."""
    name = target_group_name(prefix, backend)
    if not TARGET_GROUP_NAME.match(name):
        raise ConfigError(
            f"{table.source}: backends.{backend}: target group name {name!r} is not "
            "valid on AWS (1-32 letters, digits and '-', no '-' at either end); use a "
            "shorter --prefix or backend name, or set aws.target_group_arn"
        )
    return name


def _target_group(table: RoutingTable, backend: Backend, prefix: str) -> TargetGroup:
    arn = backend.aws.get("target_group_arn")
    name = target_group_name(prefix, backend.name)
    if arn is None:
        if backend.kind is BackendKind.URL:
            raise ConfigError(
                f"{table.source}: backends.{backend.name}: a url backend has no AWS target "
                "group of its own; set aws.target_group_arn to the one that serves it"
            )
        name = _valid_name(table, backend.name, prefix)
    return TargetGroup(
        backend.name, backend.kind, name, str(arn) if arn else None, dict(backend.aws)
    )


def desired(table: RoutingTable, prefix: str = DEFAULT_PREFIX) -> Listener:
    """The listener the table describes, or ``ConfigError`` naming what AWS cannot do."""
    if table.settings.override.enabled:
        raise ConfigError(
            f"{table.source}: facade.override.enabled is true: the tester override header is a "
            "local testing aid and has no ALB equivalent; turn it off in the file you deploy"
        )
    rules = tuple(
        Rule(route.name, route.priority, RuleBody(conditions(route), action(table, route)))
        for route in table.routes
    )
    default = forward(table, table.default)
    # every backend a route lists, at 0 % too: its group outlives a rollback
    used = {t.backend for route in table.all_routes for t in route.targets}
    groups = tuple(
        _target_group(table, backend, prefix)
        for name, backend in table.backends.items()
        if name in used
    )
    if any(route.shadow is not None and route.fixed is None for route in table.routes):
        groups = (*groups, facade_target_group(table, prefix))
    return Listener(rules, default, groups)
