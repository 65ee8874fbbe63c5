"""The one module that makes the Lambda and API Gateway control-plane calls of a version
canary: a thin typed wrapper over boto3's ``lambda`` and ``apigateway`` (REST API)
clients that turns AWS errors into ``AwsError``.

What AWS enforces and its stand-in (moto) does not, enforced here before any call:

* an alias' ``RoutingConfig.AdditionalVersionWeights`` names **one** version besides
  the alias' own (at most 2 versions), a published one (digits, never ``$LATEST``), not
  the alias' version itself, with a weight from 0.0 to 1.0 — moto stores any map, any
  number;
* a stage canary's ``percentTraffic`` is 0.0-100.0 — moto 5 keeps no ``canarySettings``
  at all: it accepts the patch operations and drops them, so a change is read back
  before it counts (``facade.rollout.versions``) and the tests give the stand-in the
  canary settings API Gateway documents (``tests/facade/stage_canary.py``).

HTTP APIs (API Gateway v2) have no canary settings: a stage canary is a REST API's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facade.aws.client import boto_client, call
from facade.exceptions import AwsError

PUBLISHED = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class AliasRouting:
    """An alias as Lambda reports it: its version and the other version's weight."""

    version: str
    weights: Mapping[str, float] = field(default_factory=dict)  # version → 0.0-1.0


@dataclass(frozen=True)
class StageState:
    """A REST API stage as API Gateway reports it."""

    deployment: str | None
    variables: Mapping[str, str]
    canary_percent: float | None  # None: the stage has no canary
    canary_variables: Mapping[str, str] = field(default_factory=dict)


def check_routing(version: str, weights: Mapping[str, float]) -> None:
    """Refuse an alias routing configuration AWS would refuse (moto takes any)."""
    if not PUBLISHED.match(version) and weights:
        raise AwsError(
            f"alias routing: the alias points at {version!r}; an alias with a routing "
            "configuration points at a published version (digits), never $LATEST"
        )
    if len(weights) > 1:
        raise AwsError(
            f"alias routing: {len(weights)} additional versions ({', '.join(weights)}); "
            "an alias splits between its version and at most one other"
        )
    for other, weight in weights.items():
        if not PUBLISHED.match(other) or other == version:
            raise AwsError(
                f"alias routing: additional version {other!r} must be a published version "
                f"other than the alias' own ({version})"
            )
        if not 0.0 <= weight <= 1.0:
            raise AwsError(f"alias routing: weight {weight!r} of {other}: AWS takes 0.0-1.0")


class FunctionClient:
    """Lambda aliases and REST API stages: what a version canary reads and moves."""

    def __init__(self, lambda_client: Any, apigateway: Any) -> None:
        self._lambda = lambda_client
        self._apigateway = apigateway

    @classmethod
    def connect(
        cls, endpoint: str | None = None, credentials: Mapping[str, Any] | None = None
    ) -> FunctionClient:
        return cls(
            boto_client("lambda", endpoint, credentials),
            boto_client("apigateway", endpoint, credentials),
        )

    _call = staticmethod(call)

    # -- Lambda aliases -----------------------------------------------------------------

    def alias(self, function: str, alias: str) -> AliasRouting:
        answer = self._call(self._lambda, "get_alias", FunctionName=function, Name=alias)
        weights = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasRouting(
            str(answer["FunctionVersion"]), {str(k): float(v) for k, v in weights.items()}
        )

    def set_alias(
        self, function: str, alias: str, version: str, weights: Mapping[str, float]
    ) -> AliasRouting:
        """Point the alias at ``version`` with these additional weights ({} clears them)."""
        check_routing(version, weights)
        answer = self._call(
            self._lambda,
            "update_alias",
            FunctionName=function,
            Name=alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": dict(weights)},
        )
        found = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasRouting(
            str(answer["FunctionVersion"]), {str(k): float(v) for k, v in found.items()}
        )

    # -- REST API stages ----------------------------------------------------------------

    def rest_api(self, name: str) -> str:
        """The id of the REST API named ``name`` (exactly one must exist)."""
        found: list[str] = []
        position: str | None = None
        while True:
            page = self._call(
                self._apigateway, "get_rest_apis", **({"position": position} if position else {})
            )
            found += [str(a["id"]) for a in page.get("items", []) if a.get("name") == name]
            position = page.get("position")
            if not position:
                break
        if len(found) != 1:
            raise AwsError(
                f"get_rest_apis: {len(found)} REST APIs named {name!r}; a stage canary needs "
                "exactly one (render apigw --cloudformation deploys it)"
            )
        return found[0]

    def stage(self, api: str, stage: str) -> StageState:
        answer = self._call(self._apigateway, "get_stage", restApiId=api, stageName=stage)
        canary = answer.get("canarySettings")
        return StageState(
            answer.get("deploymentId"),
            dict(answer.get("variables") or {}),
            float(canary.get("percentTraffic", 0.0)) if canary is not None else None,
            dict((canary or {}).get("stageVariableOverrides") or {}),
        )

    def set_stage_canary(
        self, api: str, stage: str, percent: float, overrides: Mapping[str, str]
    ) -> StageState:
        """The stage's canary at ``percent`` with these stage variable overrides (created
        on the stage's own deployment when the stage has none)."""
        if not 0.0 <= percent <= 100.0:
            raise AwsError(f"stage canary: percentTraffic {percent!r}: AWS takes 0.0-100.0")
        current = self.stage(api, stage)
        operations = [
            {"op": "replace", "path": "/canarySettings/percentTraffic", "value": f"{percent:g}"},
            *(
                {
                    "op": "replace",
                    "path": f"/canarySettings/stageVariableOverrides/{name}",
                    "value": value,
                }
                for name, value in overrides.items()
            ),
        ]
        if current.canary_percent is None and current.deployment:
            operations.insert(
                0,
                {
                    "op": "replace",
                    "path": "/canarySettings/deploymentId",
                    "value": current.deployment,
                },
            )
        self._call(
            self._apigateway,
            "update_stage",
            restApiId=api,
            stageName=stage,
            patchOperations=operations,
        )
        return self.stage(api, stage)

    def promote_stage(self, api: str, stage: str, variable: str, value: str) -> StageState:
        """The stage variable to ``value`` and the canary removed."""
        self._call(
            self._apigateway,
            "update_stage",
            restApiId=api,
            stageName=stage,
            patchOperations=[
                {"op": "replace", "path": f"/variables/{variable}", "value": value},
                {"op": "remove", "path": "/canarySettings"},
            ],
        )
        return self.stage(api, stage)

    def restore_stage(self, api: str, stage: str, before: StageState, variable: str) -> None:
        """Put a stage back as it was read (undo of a failed change)."""
        value = before.variables.get(variable)
        operations: list[dict[str, str]] = []
        if value is not None:
            operations.append({"op": "replace", "path": f"/variables/{variable}", "value": value})
        if before.canary_percent is None:
            operations.append({"op": "remove", "path": "/canarySettings"})
        else:
            operations.append(
                {
                    "op": "replace",
                    "path": "/canarySettings/percentTraffic",
                    "value": f"{before.canary_percent:g}",
                }
            )
            operations += [
                {
                    "op": "replace",
                    "path": f"/canarySettings/stageVariableOverrides/{name}",
                    "value": v,
                }
                for name, v in before.canary_variables.items()
            ]
        self._call(
            self._apigateway,
            "update_stage",
            restApiId=api,
            stageName=stage,
            patchOperations=operations,
        )


__all__ = ["AliasRouting", "FunctionClient", "StageState", "check_routing"]
