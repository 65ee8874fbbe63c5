"""The canary settings of a REST API stage, given to the in-process moto stand-in for a
test: moto 5 accepts ``/canarySettings/...`` patch operations and drops them, and its
stages report no ``canarySettings``. This keeps them as API Gateway documents them
(``percentTraffic``, ``stageVariableOverrides``, ``deploymentId``; ``remove
/canarySettings`` ends the canary), so the stage canary's calls can be read back."""

from __future__ import annotations

from typing import Any

import pytest
from moto.apigateway.models import Stage


def give_moto_stage_canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_operations = Stage.apply_operations
    to_json = Stage.to_json

    def apply(self: Stage, operations: list[dict[str, Any]]) -> Stage:
        rest = []
        for op in operations:
            path = op["path"]
            if path == "/canarySettings" and op["op"] == "remove":
                self.canary_settings = None  # type: ignore[attr-defined]
            elif path.startswith("/canarySettings/"):
                canary = getattr(self, "canary_settings", None) or {
                    "percentTraffic": 0.0,
                    "stageVariableOverrides": {},
                    "useStageCache": False,
                }
                _, _, key, *name = path.split("/", 3)
                if key == "percentTraffic":
                    canary[key] = float(op["value"])
                elif key == "stageVariableOverrides" and name:
                    canary[key][name[0]] = op["value"]
                else:
                    canary[key] = op["value"]
                self.canary_settings = canary  # type: ignore[attr-defined]
            else:
                rest.append(op)
        return apply_operations(self, rest)

    def as_json(self: Stage) -> dict[str, Any]:
        out = to_json(self)
        canary = getattr(self, "canary_settings", None)
        if canary is not None:
            out["canarySettings"] = canary
        return out

    monkeypatch.setattr(Stage, "apply_operations", apply)
    monkeypatch.setattr(Stage, "to_json", as_json)
