"""A new version of an extracted Lambda function, canaried by the rollout engine.

The plan, the analysis, the gates, the durable state and the controller are a route's
rollout's (``facade.rollout.controller``); what differs is what moves and what is read:

* **what moves** — a ``VersionMover``: the backend's ``canary.weight`` in routing.yaml
  (which the local facade splits invocations by), and with ``--apply`` first AWS:

  - ``mechanism: alias`` (``AliasTraffic``): the alias' ``AdditionalVersionWeights``
    give the new version the step's weight; promotion points the alias at the new
    version and clears the weights;
  - ``mechanism: stage`` (``StageTraffic``): the REST API stage's canary
    (``percentTraffic``, ``stageVariableOverrides`` naming the new alias) gets the
    step's percent; promotion sets the stage variable to the new alias and removes the
    canary.

  Each AWS change is read back before it counts; a read-back that differs, or a file
  write that fails after AWS took the change, puts AWS back as it was read before, and
  the controller pauses with nothing changed. Rollback is the canary at 0.
* **what is read** — the two versions' requests: locally the facade's per-version
  series (``FacadeVersionProvider``); with ``analysis.provider: cloudwatch``
  (``version_arms``):

  - alias weights: the function's own ``Invocations``, ``Errors`` and ``Duration`` by
    ``ExecutedVersion`` under the alias. Lambda's ``Errors`` counts invocations that
    raised or timed out: a 500 the function returns itself is a success to Lambda (the
    facade's series count it as an error);
  - a stage canary: API Gateway's own view of the stage, from its access logs
    (``facade.aws.metrics.stage_access_logs``) — the answers its clients got, so what
    API Gateway answers itself counts too: a canary alias it may not invoke (a 500 and
    no invocation at all), an integration that times out. The canary arm is what the
    ``/Canary`` log group counts; the baseline is the stage's log group *less* the
    canary's, because API Gateway writes a canary request to both groups (its developer
    guide, "Set up an API Gateway canary release deployment"). The baseline's latency
    quantile is the whole stage's (a quantile cannot be subtracted): with a small canary
    share, nearly all the baseline's.

A rollout's state is kept under ``BACKEND@canary``, a name no route can have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from facade.aws.cloudwatch import CloudWatchClient
from facade.aws.lambda_client import AliasRouting, FunctionClient, StageState
from facade.aws.metrics import ArmMetrics, lambda_alias, stage_access_logs
from facade.exceptions import AwsError, ConfigError
from facade.rollout.cloudwatch import CloudWatchProvider
from facade.rollout.controller import Controller
from facade.rollout.engine import Phase, RolloutState
from facade.rollout.plan import VersionCanary
from facade.routing.edit import edit_canary
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable

TOLERANCE = 0.05  # percent: what a read-back may differ by (AWS stores doubles)


class Traffic(Protocol):
    """One AWS mechanism's part of a move: set, promote, undo; each read back."""

    def set(self, share: int) -> float:
        """The new version at ``share`` (tenths); its weight read back, percent."""
        ...

    def promote(self) -> float: ...

    def snapshot(self) -> object: ...

    def restore(self, before: object) -> None: ...


@dataclass
class AliasTraffic:
    client: FunctionClient
    function: str
    alias: str
    baseline: str
    canary: str

    def _check(self, found: AliasRouting, version: str, weight: float) -> float:
        share = found.weights.get(self.canary, 0.0)
        extra = set(found.weights) - {self.canary}
        if found.version != version or extra or abs(share - weight) > TOLERANCE / 100:
            raise AwsError(
                f"alias {self.function}:{self.alias} reads back version {found.version} "
                f"with {dict(found.weights)}, not {version} with {self.canary}: {weight:g}"
            )
        return 100.0 if version == self.canary else share * 100

    def set(self, share: int) -> float:
        weights = {self.canary: share / 1000} if share else {}
        self.client.set_alias(self.function, self.alias, self.baseline, weights)
        found = self.client.alias(self.function, self.alias)
        return self._check(found, self.baseline, share / 1000)

    def promote(self) -> float:
        self.client.set_alias(self.function, self.alias, self.canary, {})
        return self._check(self.client.alias(self.function, self.alias), self.canary, 0.0)

    def snapshot(self) -> AliasRouting:
        return self.client.alias(self.function, self.alias)

    def restore(self, before: object) -> None:
        assert isinstance(before, AliasRouting)
        self.client.set_alias(self.function, self.alias, before.version, before.weights)


@dataclass
class StageTraffic:
    client: FunctionClient
    api_name: str
    stage: str
    variable: str
    baseline: str
    canary: str
    _api: str | None = None

    @property
    def api(self) -> str:
        if self._api is None:
            self._api = self.client.rest_api(self.api_name)
        return self._api

    def set(self, share: int) -> float:
        found = self.client.set_stage_canary(
            self.api, self.stage, share / 10, {self.variable: self.canary}
        )
        calls = found.canary_variables.get(self.variable)
        serves = found.variables.get(self.variable)
        if (
            found.canary_percent is None
            or abs(found.canary_percent - share / 10) > TOLERANCE
            or calls != self.canary
            or serves != self.baseline
        ):
            raise AwsError(
                f"stage {self.api_name}/{self.stage} reads back canary "
                f"{found.canary_percent} % calling {calls!r} beside {serves!r}, not "
                f"{share / 10:g} % calling {self.canary!r} beside {self.baseline!r}"
            )
        return found.canary_percent

    def promote(self) -> float:
        found = self.client.promote_stage(self.api, self.stage, self.variable, self.canary)
        if found.variables.get(self.variable) != self.canary or found.canary_percent is not None:
            raise AwsError(
                f"stage {self.api_name}/{self.stage} reads back {self.variable}="
                f"{found.variables.get(self.variable)!r} and canary {found.canary_percent}, "
                f"not {self.canary!r} without a canary"
            )
        return 100.0

    def snapshot(self) -> StageState:
        return self.client.stage(self.api, self.stage)

    def restore(self, before: object) -> None:
        assert isinstance(before, StageState)
        self.client.restore_stage(self.api, self.stage, before, self.variable)


def traffic_for(canary: VersionCanary, table: RoutingTable, client: FunctionClient) -> Traffic:
    """The AWS mechanism the backend's canary block names."""
    backend = table.backends[canary.backend]
    if canary.stage is not None:
        return StageTraffic(
            client,
            canary.stage.api,
            canary.stage.stage,
            canary.stage.variable,
            canary.baseline,
            canary.canary,
        )
    return AliasTraffic(
        client,
        str(backend.aws.get("function", backend.name)),
        str(backend.aws.get("alias", "live")),
        canary.baseline,
        canary.canary,
    )


def version_arms(table: RoutingTable, canary: VersionCanary) -> dict[str, ArmMetrics]:
    """Where each version's requests show in CloudWatch: alias weights by
    ``ExecutedVersion`` under the alias (``AWS/Lambda``); a stage canary in the stage's
    access-log metrics, the baseline as the stage's less its canary's."""
    if canary.stage is not None:
        stage = canary.stage
        released = stage_access_logs(stage.api, stage.stage, canary=True)
        every = stage_access_logs(stage.api, stage.stage, canary=False)
        return {canary.baseline: replace(every, minus=released), canary.canary: released}
    backend = table.backends[canary.backend]
    serving = lambda_alias(
        str(backend.aws.get("function", backend.name)), str(backend.aws.get("alias", "live"))
    )
    return {
        version: replace(serving, dimensions=(*serving.dimensions, ("ExecutedVersion", version)))
        for version in (canary.baseline, canary.canary)
    }


def version_provider(
    table: RoutingTable, canary: VersionCanary, started: float, cloudwatch: CloudWatchClient
) -> CloudWatchProvider:
    """``analysis.provider: cloudwatch`` of a version canary that started at ``started``."""
    latency = canary.plan.analysis.latency
    return CloudWatchProvider(
        cloudwatch,
        version_arms(table, canary),
        datetime.fromtimestamp(started, UTC),
        quantile=latency.quantile if latency is not None else None,
    )


@dataclass
class VersionMover:
    """Moves a function's new version: AWS first (read back), then routing.yaml; a file
    write that fails after AWS took the change undoes the AWS change."""

    routing: Path
    backend: str
    traffic: Traffic | None = None
    actual: float | None = field(default=None, init=False)

    def _change(self, share: int, who: str, *, promote: bool) -> str:
        traffic = self.traffic
        before = traffic.snapshot() if traffic is not None else None
        pushed = False

        def push(_: RoutingTable) -> None:
            nonlocal pushed
            if traffic is None:
                return
            pushed = True
            try:
                self.actual = traffic.promote() if promote else traffic.set(share)
            except AwsError:
                traffic.restore(before)
                raise

        try:
            change = edit_canary(
                self.routing, self.backend, share, promote=promote, who=who, push=push
            )
        except (OSError, ConfigError):
            if pushed and traffic is not None:
                traffic.restore(before)
            raise
        return change.describe()

    def move(self, share: int, who: str) -> str:
        return self._change(share, who, promote=False)

    def promote(self, who: str) -> str | None:
        return self._change(0, who, promote=True)

    def read_back(self) -> float | None:
        return self.actual


class CanaryController(Controller):
    """The rollout controller on a Lambda backend's ``canary:`` block (``route`` is the
    state's name, ``BACKEND@canary``)."""

    canary: VersionCanary

    @property
    def backend(self) -> str:
        return self.route.removesuffix("@canary")

    def reload(self) -> None:
        self.table = load_table(self.routing)
        found = self.table.backends.get(self.backend)
        if found is None or found.canary is None:
            raise ConfigError(
                f"{self.routing}: backend {self.backend!r} has no canary block; add one "
                "(README: Canary a new version of a function)"
            )
        self.canary = found.canary
        self.plan = found.canary.plan

    def current_share(self) -> int:
        return self.canary.share

    def canary_url(self) -> str:
        return self.table.backends[self.backend].url or ""

    def begin(self, *, restart: bool = False) -> RolloutState:
        state = self.store.load()
        canary = self.canary
        if (
            state is not None
            and not state.phase.finished
            and canary.baseline == canary.canary == state.canary
        ):
            # killed after the promotion was made, before it was recorded
            state.phase = Phase.PROMOTED
            state.pending = None
            state.reason = f"{state.canary} serves (promoted before a restart)"
            self._event(state, "promoted", reason=state.reason)
            self.store.save(state)
            return state
        if (state is None or state.phase.finished or restart) and (
            canary.baseline == canary.canary
        ):
            raise ConfigError(
                f"{self.routing}: backends.{self.backend}.canary: from and to are both "
                f"{canary.canary}: nothing to canary; set to: to the new version"
            )
        return super().begin(restart=restart)


__all__ = [
    "AliasTraffic",
    "CanaryController",
    "StageTraffic",
    "Traffic",
    "VersionMover",
    "traffic_for",
    "version_arms",
    "version_provider",
]
