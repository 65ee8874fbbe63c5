"""A route's rollout plan (routing.yaml ``routes[].rollout``) as immutable data.

::

    rollout:
      to: orders                      # the backend the route moves to
      steps: [1, 10, 50, 100]         # its weight at each step, % in steps of 0.1
      step: {min_time: 60, min_sample: 200, max_wait: 900}   # every step's defaults
      # a step may override them:  - {weight: 50, min_time: 300}
      bake: 300                       # seconds at 100 % before the rollout is promoted
      interval: 10                    # seconds between two analyses
      on_inconclusive: pause          # at max_wait: hold | pause | rollback
      pre_checks:                     # before any traffic; {url} is the new backend's
        - {name: contract, run: "{python} -m pytest tests/contract --base-url {url}", timeout: 300}
      analysis:
        provider: facade              # facade | prometheus | cloudwatch
        false_alarm: 0.01             # chance per rollout of a rollback of a healthy backend
        errors: {max_increase: 1}     # points above the monolith's error rate still passing
        latency: {quantile: 0.95, max_increase: 25}   # % above the monolith's quantile
        critical: {errors: 5, min_requests: 20}       # canary 5xx % that rolls back at once
        provider_errors: 3            # consecutive provider errors that pause the rollout
        watch: 1                      # seconds between looks for a failure between analyses
      gates:
        sync: {max_lag: 30, dead_letters: 0, max_conflict_rate: 5, verify_sample: 50}
        shadow: {max_difference: 1, min_sample: 500}

Weights are tenths of a percent (``share``) as in the rest of the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class OnInconclusive(StrEnum):
    HOLD = "hold"  # stay at this weight and keep judging
    PAUSE = "pause"  # stop and wait for a human (exit 3 in the foreground)
    ROLLBACK = "rollback"


class Provider(StrEnum):
    FACADE = "facade"  # the facade's admin listener, summed over its workers
    PROMETHEUS = "prometheus"  # a Prometheus HTTP API in front of several facades
    CLOUDWATCH = "cloudwatch"  # the ALB target groups' (and Lambda aliases') metrics


@dataclass(frozen=True)
class Step:
    share: int  # the new backend's weight, tenths of a percent (1..1000)
    min_time: float = 60.0  # seconds at this weight before it may pass
    min_sample: int = 200  # canary requests in this step before it may pass
    max_wait: float = 900.0  # seconds without a pass before on_inconclusive applies

    @property
    def percent(self) -> float:
        return self.share / 10


@dataclass(frozen=True)
class PreCheck:
    name: str
    run: str  # a command (shlex-split, never a shell); {url} {python} {route} filled in
    timeout: float = 300.0


@dataclass(frozen=True)
class ErrorCheck:
    max_increase: float = 1.0  # percentage points over the baseline's error rate


@dataclass(frozen=True)
class LatencyCheck:
    quantile: float = 0.95
    max_increase: float = 25.0  # percent over the baseline's quantile


@dataclass(frozen=True)
class CriticalGuard:
    errors: float = 5.0  # canary 5xx and connection failures, percent of its requests
    min_requests: int = 20  # canary requests in the step before the guard may fire


@dataclass(frozen=True)
class Analysis:
    provider: Provider = Provider.FACADE
    prometheus: str | None = None  # base URL of the Prometheus HTTP API
    false_alarm: float = 0.01
    errors: ErrorCheck = ErrorCheck()
    latency: LatencyCheck | None = LatencyCheck()
    critical: CriticalGuard = CriticalGuard()
    provider_errors: int = 3  # consecutive provider errors before the rollout pauses
    # seconds between two looks for a failure between analyses (None: 1 with the facade's
    # own metrics, 0 — at each analysis only — with Prometheus and CloudWatch, whose
    # figures change once a scrape or a minute)
    watch: float | None = None

    @property
    def watch_every(self) -> float:
        if self.watch is not None:
            return self.watch
        return 1.0 if self.provider is Provider.FACADE else 0.0


@dataclass(frozen=True)
class SyncGate:
    streams: tuple[str, ...] = ()  # empty: every stream the new backend is a side of
    max_lag: float = 30.0  # seconds the oldest unapplied change may wait
    dead_letters: int = 0  # new dead letters allowed during the rollout
    max_conflict_rate: float = 5.0  # percent of the changes applied since the start
    verify_sample: int = 50  # recent ids compared by `sync verify` (0: none)


@dataclass(frozen=True)
class ShadowGate:
    max_difference: float = 1.0  # percent of compared requests with a real difference
    min_sample: int = 500  # compared requests before the first live step


@dataclass(frozen=True)
class Gates:
    sync: SyncGate | None = None
    shadow: ShadowGate | None = None


@dataclass(frozen=True)
class RolloutPlan:
    to: str  # the backend the route moves to
    baseline: str  # the backend it moves away from (``from:``, or its other target)
    steps: tuple[Step, ...]  # ascending; the last is 1000 (100 %)
    bake: float = 300.0
    interval: float = 10.0
    on_inconclusive: OnInconclusive = OnInconclusive.PAUSE
    pre_checks: tuple[PreCheck, ...] = ()
    analysis: Analysis = Analysis()
    gates: Gates = field(default_factory=Gates)
    line: int = 0  # where the block starts, for messages


class Mechanism(StrEnum):
    """How AWS splits a function's traffic between two of its versions."""

    ALIAS = "alias"  # the alias' RoutingConfig.AdditionalVersionWeights
    STAGE = "stage"  # an API Gateway stage canary: stage variable → alias, per arm


@dataclass(frozen=True)
class LocalVersion:
    """How the facade runs one version of a function here."""

    handler: str  # "module:function"
    code: str | None = None  # a directory put first on the import path (absolute)


@dataclass(frozen=True)
class StageCanary:
    """The REST API stage whose canary splits the function (``mechanism: stage``)."""

    api: str  # the REST API's name
    stage: str = "live"
    variable: str = "alias"  # the stage variable the integration's function ARN reads
    # the stage's access-log group (its canary's is this + "/Canary") and their retention
    log_group: str = ""  # "" → /strangler/API/STAGE
    log_retention: int = 30  # days

    @property
    def access_logs(self) -> str:
        return self.log_group or f"/strangler/{self.api}/{self.stage}"

    @property
    def canary_access_logs(self) -> str:
        """Where API Gateway writes a canary request's access-log line as well (its
        developer guide: the stage's group with ``/Canary`` appended)."""
        return self.access_logs + "/Canary"


@dataclass(frozen=True)
class VersionCanary:
    """A Lambda backend's ``canary:`` block: a new version of the function against the
    one serving now, moved by the same plan as a route's rollout (``plan.baseline`` and
    ``plan.to`` are the two versions — or, for a stage canary, the two aliases).

    ``share`` is the new version's share now, tenths of a percent; ``baseline ==
    canary`` means nothing is being canaried (the last canary was promoted)."""

    backend: str
    mechanism: Mechanism
    baseline: str
    canary: str
    share: int
    local: Mapping[str, LocalVersion]
    plan: RolloutPlan
    stage: StageCanary | None = None
    line: int = 0

    @property
    def key(self) -> str:
        """Its rollout state's name: never a route's (route names have no ``@``)."""
        return canary_key(self.backend)


def canary_key(backend: str) -> str:
    return f"{backend}@canary"


__all__ = [
    "Analysis",
    "CriticalGuard",
    "ErrorCheck",
    "Gates",
    "LatencyCheck",
    "LocalVersion",
    "Mechanism",
    "OnInconclusive",
    "PreCheck",
    "Provider",
    "RolloutPlan",
    "ShadowGate",
    "StageCanary",
    "Step",
    "SyncGate",
    "VersionCanary",
    "canary_key",
]
