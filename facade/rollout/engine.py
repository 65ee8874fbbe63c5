"""The rollout's decisions, as a pure function of the plan, the state and the verdicts.

``decide`` never reads a clock, a file or the network: the local controller
(``facade.rollout.controller``) and the AWS task (``facade.rollout.task``) feed it the
same inputs and get the same answer. The state is plain JSON (``RolloutState``), written
by the controller before and after every change, so a restart continues exactly where
the last run stopped.

The life of a rollout::

    pre_checks → progressing (step 1 … n) → baking (at 100 %) → promoted
                      │    ↑ advance: every metric passes, gates open, min time and sample
                      ├─ any fail (or the critical guard) ──────────→ rolled_back
                      ├─ provider errors in a row / inconclusive at max_wait (pause)
                      │                                             → paused → (resume)
                      └─ abort ──────────────────────────────────────→ rolled_back

A step passes when it has run ``min_time`` seconds, the canary has answered
``min_sample`` requests in it, every metric verdict is *pass*, and every gate is open.
At 100 % the monolith gets no traffic, so nothing can be compared: the bake watches the
critical guard and the providers for ``bake`` seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from facade.rollout.plan import OnInconclusive, RolloutPlan
from facade.rollout.samples import Result, Verdict

HISTORY = 200  # transitions kept in the state (the audit log keeps them all)


class Phase(StrEnum):
    PRE_CHECKS = "pre_checks"
    PROGRESSING = "progressing"
    BAKING = "baking"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"

    @property
    def finished(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK)


class Action(StrEnum):
    WAIT = "wait"  # keep the weight, judge again after an interval
    ADVANCE = "advance"  # set the next step's weight
    BAKE = "bake"  # at 100 %: start the bake
    PROMOTE = "promote"  # the bake passed: done
    ROLLBACK = "rollback"  # the canary gets 0 %
    PAUSE = "pause"  # keep the weight, stop, wait for a human


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    share: int | None = None  # the canary's share to set, for advance and rollback


@dataclass
class RolloutState:
    route: str
    baseline: str
    canary: str
    started: float
    phase: Phase = Phase.PRE_CHECKS
    step: int = -1  # index into plan.steps; -1 before the first
    step_started: float = 0.0
    configured: int = 0  # the canary's share the file (and AWS) last got from us, tenths
    observed: float | None = None  # the canary's observed share this step, percent
    actual: float | None = None  # the canary's weight read back from AWS, percent
    pending: dict[str, Any] | None = None  # intent: the change being made right now
    seq: int = 0  # changes made so far (intent ids)
    step_baseline: int = 0  # requests of each arm in this step
    step_canary: int = 0
    step_canary_errors: int = 0
    last_reading: dict[str, Any] | None = None  # cumulative counts of the last reading
    analyzer: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    provider_errors: int = 0
    paused_reason: str | None = None
    paused_from: str | None = None  # the phase a pause interrupted, resumed into
    gate_origin: dict[str, Any] = field(default_factory=dict)  # gate counters at the start
    resumed_at: float | None = None  # a resume restarts the max_wait clock
    commands_seen: int = 0
    reason: str = ""  # why the last transition happened
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["phase"] = str(self.phase)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        state = cls(**known)
        state.phase = Phase(state.phase)
        return state

    def record(self, now: float, event: str, **details: Any) -> dict[str, Any]:
        entry = {"at": now, "event": event, **details}
        self.history = [*self.history, entry][-HISTORY:]
        return entry


def _metric_verdicts(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.metric not in ("sync", "shadow")]


def decide(
    plan: RolloutPlan,
    state: RolloutState,
    verdicts: list[Verdict],
    gates: list[Verdict],
    now: float,
) -> Decision:
    """What to do after one analysis, given the verdicts of the metrics (errors, latency,
    critical, provider) and of the gates (sync, shadow) for the current step."""
    failed = [v for v in verdicts if v.result is Result.FAIL]
    if failed:
        worst = next((v for v in failed if v.metric == "critical"), failed[0])
        return Decision(Action.ROLLBACK, f"{worst.metric}: {worst.reason}", 0)
    provider = [v for v in verdicts if v.result is Result.PROVIDER_ERROR]
    if provider:
        if state.provider_errors >= plan.analysis.provider_errors:
            return Decision(
                Action.PAUSE,
                f"{state.provider_errors} provider errors in a row: {provider[0].reason}",
            )
        return Decision(Action.WAIT, f"provider error ({provider[0].reason}); judging again")

    step = plan.steps[state.step]
    in_step = now - state.step_started
    if state.phase is Phase.BAKING:
        if in_step >= plan.bake:
            return Decision(Action.PROMOTE, f"baked {plan.bake:g}s at 100 % without a failure")
        return Decision(Action.WAIT, f"baking: {in_step:.0f}s of {plan.bake:g}s")

    metrics = _metric_verdicts(verdicts)
    waiting: list[str] = []
    if in_step < step.min_time:
        waiting.append(f"{in_step:.0f}s of {step.min_time:g}s at {step.percent:g} %")
    if state.step_canary < step.min_sample:
        waiting.append(f"{state.step_canary} of {step.min_sample} canary requests")
    unsure = [v for v in metrics if v.result is not Result.PASS]
    waiting += [f"{v.metric} {v.result}: {v.reason}" for v in unsure]
    closed = [g for g in gates if g.result is not Result.PASS]
    waiting += [f"gate {g.metric}: {g.reason}" for g in closed]
    if not waiting:
        if state.step + 1 >= len(plan.steps):
            return Decision(Action.BAKE, f"step {state.step + 1} passed at 100 %", step.share)
        nxt = plan.steps[state.step + 1]
        return Decision(
            Action.ADVANCE,
            f"step {state.step + 1} passed at {step.percent:g} %: "
            + ", ".join(f"{v.metric} {v.result}" for v in [*metrics, *gates]),
            nxt.share,
        )
    clock_from = max(state.step_started, state.resumed_at or 0.0)
    if now - clock_from >= step.max_wait:
        why = f"no pass after {step.max_wait:g}s at {step.percent:g} %: " + "; ".join(waiting)
        if plan.on_inconclusive is OnInconclusive.ROLLBACK:
            return Decision(Action.ROLLBACK, why, 0)
        if plan.on_inconclusive is OnInconclusive.PAUSE:
            return Decision(Action.PAUSE, why)
        return Decision(Action.WAIT, "holding: " + why)
    return Decision(Action.WAIT, "waiting: " + "; ".join(waiting))


def first_step(plan: RolloutPlan, current: int) -> int:
    """The index of the first step at or above the canary's current share (steps the
    route already passed by hand are not walked again; the one it is at is judged)."""
    for index, step in enumerate(plan.steps):
        if step.share >= current:
            return index
    return len(plan.steps) - 1


__all__ = ["Action", "Decision", "Phase", "RolloutState", "decide", "first_step"]
