"""ALB forward-action limits as cfn-lint rules (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

MAX_WEIGHT = 999
MAX_TARGET_GROUPS = 5
MAX_STICKINESS = 604_800

Path = list[str | int]


def forward_configs(cfn: Any) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, ForwardConfig) of every forward action of listeners and listener rules."""
    sources = {
        "AWS::ElasticLoadBalancingV2::ListenerRule": "Actions",
        "AWS::ElasticLoadBalancingV2::Listener": "DefaultActions",
    }
    for name, resource in cfn.get_resources(list(sources)).items():
        key = sources[resource.get("Type")]
        actions = (resource.get("Properties") or {}).get(key)
        if not isinstance(actions, list):
            continue
        for index, action in enumerate(actions):
            config = action.get("ForwardConfig") if isinstance(action, dict) else None
            if isinstance(config, dict):
                yield ["Resources", name, "Properties", key, index, "ForwardConfig"], config


def _literal_int(value: Any) -> int | None:
    """An int written in the template (None for an intrinsic function or a non-number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class _ForwardChecks:
    """A check of every forward action's ForwardConfig (a mixin: cfn-lint instantiates
    every subclass of its rule class it finds in the module, so this one is not one)."""

    def match(self, cfn: Any) -> list[RuleMatch]:
        return [
            found for path, config in forward_configs(cfn) for found in self.check(path, config)
        ]

    def check(self, path: Path, config: dict[str, Any]) -> list[RuleMatch]:
        raise NotImplementedError


class ForwardWeightRange(_ForwardChecks, CloudFormationLintRule):  # type: ignore[misc]
    id = "E9101"
    shortdesc = "ALB target group weight out of range"
    description = "A target group's weight in a forward action must be 0-999."
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html"
    tags = ["resources", "elasticloadbalancingv2", "strangler"]

    def check(self, path: Path, config: dict[str, Any]) -> list[RuleMatch]:
        found = []
        for index, group in enumerate(config.get("TargetGroups") or []):
            weight = _literal_int(group.get("Weight")) if isinstance(group, dict) else None
            if weight is not None and not 0 <= weight <= MAX_WEIGHT:
                where = [*path, "TargetGroups", index, "Weight"]
                found.append(RuleMatch(where, f"weight {weight} is outside 0-{MAX_WEIGHT}"))
        return found


class ForwardTargetGroupCount(_ForwardChecks, CloudFormationLintRule):  # type: ignore[misc]
    id = "E9102"
    shortdesc = "Too many target groups in an ALB forward action"
    description = "A forward action can send to at most 5 target groups."
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html"
    tags = ["resources", "elasticloadbalancingv2", "strangler"]

    def check(self, path: Path, config: dict[str, Any]) -> list[RuleMatch]:
        groups = config.get("TargetGroups")
        if not isinstance(groups, list) or len(groups) <= MAX_TARGET_GROUPS:
            return []
        message = f"{len(groups)} target groups; a forward action takes at most {MAX_TARGET_GROUPS}"
        return [RuleMatch([*path, "TargetGroups"], message)]


class ForwardStickinessRange(_ForwardChecks, CloudFormationLintRule):  # type: ignore[misc]
    id = "E9103"
    shortdesc = "ALB forward stickiness duration out of range"
    description = "TargetGroupStickinessConfig.DurationSeconds must be 1-604,800 (7 days)."
    source_url = "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html"
    tags = ["resources", "elasticloadbalancingv2", "strangler"]

    def check(self, path: Path, config: dict[str, Any]) -> list[RuleMatch]:
        sticky = config.get("TargetGroupStickinessConfig")
        duration = _literal_int(sticky.get("DurationSeconds")) if isinstance(sticky, dict) else None
        if duration is None or 1 <= duration <= MAX_STICKINESS:
            return []
        where = [*path, "TargetGroupStickinessConfig", "DurationSeconds"]
        return [RuleMatch(where, f"stickiness of {duration} s is outside 1-{MAX_STICKINESS}")]
