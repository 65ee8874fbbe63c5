"""One route's rule on the live listener, moved by weight alone: how the rollout's AWS task
(``facade.rollout.task``) moves traffic — a ``Mover`` of ``facade.rollout.controller``.

The rule is found as ``plan`` finds it (``facade.aws.live``: by its ``strangler:route``
tag, or by the route's exact conditions). A move rewrites only the weights of its forward
action: the canary gets its share, the baseline the rest, any other target keeps its own;
conditions, priority and stickiness are put back as AWS answered them. At 0 % the
canary's target group leaves the action (sticky clients come back too: AWS documents no
rule for a weight-0 group), and joins it again when it gets a share. ``read_back`` reads
the rule again: the weight AWS shows, not the one asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facade.aws import alb, live
from facade.aws.client import ElbClient
from facade.exceptions import AwsError
from facade.routing.model import SHARE_TOTAL, RoutingTable, Target, alb_weights, shares_from_alb


@dataclass
class RouteRule:
    elb: ElbClient
    listener: str
    table: RoutingTable  # for the target groups' names and the route's conditions
    route: str
    baseline: str
    canary: str
    prefix: str = alb.DEFAULT_PREFIX

    def _find(self) -> tuple[live.LiveRule, live.LiveListener]:
        want = alb.desired(self.table, self.prefix)
        found = live.read(self.elb, self.listener, want)
        desired = next((r for r in want.rules if r.route == self.route), None)
        for rule in found.rules:
            if rule.route == self.route or (
                rule.route is None
                and desired is not None
                and rule.body is not None
                and rule.body.conditions == desired.body.conditions
            ):
                return rule, found
        raise AwsError(
            f"route {self.route!r} has no rule on {self.listener}; `strangler apply` first"
        )

    def read_back(self) -> float:
        """The canary's weight on the rule now, percent (0 when it is not in the action)."""
        rule, found = self._find()
        _, groups = self._forward(rule)
        weights = {str(g["TargetGroupArn"]): int(g.get("Weight") or 0) for g in groups}
        total = sum(weights.values())
        mine = weights.get(found.groups.get(self.canary, ""), 0)
        return round(mine * 100 / total, 1) if total else 0.0

    def _forward(self, rule: live.LiveRule) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The rule's single forward action (without its target groups) and its groups."""
        _, actions = rule.raw_parts()
        if len(actions) != 1 or actions[0].get("Type") != "forward":
            raise AwsError(f"route {self.route!r}: its rule's action is not a single forward")
        action = dict(actions[0])
        config: dict[str, Any] = dict(action.pop("ForwardConfig", None) or {})
        single = action.pop("TargetGroupArn", None)
        groups = [dict(g) for g in config.pop("TargetGroups", [])] or [
            {"TargetGroupArn": single, "Weight": 1}
        ]
        return {**action, "ForwardConfig": config}, groups

    def move(self, share: int, who: str) -> str:
        """Give the canary ``share`` (tenths of a percent); AWS left as it was on an error."""
        rule, found = self._find()
        conditions, _ = rule.raw_parts()
        action, groups = self._forward(rule)
        backends = {arn: b for b, arn in found.groups.items()}
        names = [backends.get(str(g["TargetGroupArn"]), "") for g in groups]
        try:
            shares = list(shares_from_alb(tuple(int(g.get("Weight") or 0) for g in groups)))
        except ValueError as exc:
            raise AwsError(f"route {self.route!r}: {exc}") from exc
        if self.canary not in names:
            if self.canary not in found.groups:
                raise AwsError(f"route {self.route!r}: no target group of {self.canary} exists")
            groups.append({"TargetGroupArn": found.groups[self.canary], "Weight": 0})
            names.append(self.canary)
            shares.append(0)
        canary = names.index(self.canary)
        baseline = names.index(self.baseline) if self.baseline in names else None
        others = sum(s for i, s in enumerate(shares) if i not in (baseline, canary))
        if baseline is None or others + share > SHARE_TOTAL:
            raise AwsError(
                f"route {self.route!r}: {self.baseline} cannot take the rest of "
                f"{share / 10:g} % for {self.canary} on the live rule "
                f"({', '.join(n or '?' for n in names)})"
            )
        shares[canary], shares[baseline] = share, SHARE_TOTAL - share - others
        kept = [i for i in range(len(groups)) if i != canary or share]
        weights = alb_weights(tuple(Target(names[i], shares[i]) for i in kept))
        action["ForwardConfig"]["TargetGroups"] = [
            {**groups[i], "Weight": w} for i, w in zip(kept, weights, strict=True)
        ]
        self.elb.modify_rule(rule.arn, conditions, [action])
        shown = ", ".join(f"{names[i] or '?'} {shares[i] / 10:g} %" for i in kept)
        return f"~ rule {self.route} ({who}): {shown}"


__all__ = ["RouteRule"]
