"""The rollout controller: walks a route's plan, one analysis per interval, and moves
its weights through the same validated edit path as ``strangler shift``.

Every change is made in three writes: the intent (``state.pending``) is saved, the edit
is made (routing.yaml, and with ``--apply`` the ALB first, read back before it counts),
then the state is saved without the intent. A controller killed at any instant finds
the intent on restart and finishes that change — the same share again, which the edit
path treats as "already so" — so a shift is never repeated as a second step nor lost.
Commands from other terminals (pause, resume, promote, abort) are read between any two
actions, also while waiting for the next analysis, so an abort waits for nothing but a
change already under way; when no controller runs, the command line handles them
itself with the same code (``Controller.handle_commands``).

Exit codes of ``run``: 0 promoted, 1 rolled back, 3 paused for a human (2, bad input,
comes from the errors raised before anything starts).
"""

from __future__ import annotations

import contextlib
import json
import math
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from facade.exceptions import AwsError, ConfigError
from facade.rollout.engine import Action, Decision, Phase, RolloutState, decide, first_step
from facade.rollout.plan import Analysis, RolloutPlan
from facade.rollout.providers import MetricsProvider, ProviderError
from facade.rollout.samples import ArmCounts, Result, Verdict, Window
from facade.rollout.state import RolloutStore
from facade.routing.edit import apply_edit
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable

EXIT_PROMOTED, EXIT_ROLLED_BACK, EXIT_PAUSED = 0, 1, 3
POLL = 0.2  # seconds between two looks at the command file while waiting


class AnalyzerLike(Protocol):
    def start_step(self, index: int) -> None: ...

    def add(self, window: Window) -> None: ...

    def verdicts(
        self, step_canary: int, step_baseline: int, step_min_sample: int
    ) -> list[Verdict]: ...

    def to_dict(self) -> dict[str, Any]: ...


AnalyzerFactory = Callable[[Analysis, dict[str, Any] | None], AnalyzerLike]
Gates = Callable[[RolloutState], list[Verdict]]
# the ALB push of --apply: gets the new table, raises AwsError (AWS left as it was)
Push = Callable[[RoutingTable], object]
# reads the canary's weight back from AWS, percent
ReadBack = Callable[[RoutingTable], float]


class Mover(Protocol):
    """How a rollout moves traffic: the route's weights in routing.yaml (and the ALB),
    or a function alias' version weights, or a stage's canary."""

    def move(self, share: int, who: str) -> str:
        """Give the canary ``share`` (tenths of a percent); a description of the change.
        Raises ``AwsError``/``ConfigError`` with nothing changed."""
        ...

    def read_back(self) -> float | None:
        """The canary's weight as the live system reports it, percent (None: nothing
        to read back)."""
        ...


@runtime_checkable
class Promotes(Protocol):
    """A Mover for which 100 % is not yet the end: after the bake, ``promote`` makes the
    canary the one serving (a function's alias moved to the new version)."""

    def promote(self, who: str) -> str | None: ...


@dataclass
class RouteMover:
    """The route's weights through the validated edit path of ``strangler shift``; with
    ``push`` the ALB first (the file is written only once AWS took it), read back."""

    routing: Path
    route: str
    canary: str
    push: Push | None = None
    read: ReadBack | None = None
    table: RoutingTable | None = None

    def move(self, share: int, who: str) -> str:
        change = apply_edit(
            self.routing,
            "shift",
            self.route,
            backend=self.canary,
            percent=share / 10,
            who=who,
            push=self.push,
        )
        self.table = change.table
        return change.describe()

    def read_back(self) -> float | None:
        if self.read is None:
            return None
        return self.read(self.table or load_table(self.routing))


def default_analyzer(settings: Analysis, saved: dict[str, Any] | None) -> AnalyzerLike:
    from facade.rollout.analysis import Analyzer

    if saved:
        return Analyzer.from_dict(settings, saved)
    return Analyzer(settings)


def _counts(data: dict[str, Any] | None) -> ArmCounts | None:
    if not data:
        return None
    return ArmCounts(
        int(data["requests"]),
        int(data["errors"]),
        tuple(math.inf if float(b) >= 1e308 else float(b) for b in data["bounds"]),
        tuple(int(b) for b in data["buckets"]),
        data.get("quantile_seconds"),
    )


def _plain(counts: ArmCounts) -> dict[str, Any]:
    return {
        "requests": counts.requests,
        "errors": counts.errors,
        "bounds": [b if b != float("inf") else 1e308 for b in counts.bounds],
        "buckets": list(counts.buckets),
        "quantile_seconds": counts.quantile_seconds,
    }


@dataclass
class Controller:
    routing: Path
    route: str
    store: RolloutStore
    provider: MetricsProvider
    who: str = "rollout"
    push: Push | None = None
    read_back: ReadBack | None = None
    gates: Gates | None = None
    analyzer_factory: AnalyzerFactory = default_analyzer
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = print
    run_command: Callable[[list[str], float], int] | None = None
    mover: Mover | None = None  # default: the route's weights (RouteMover)
    apply_to: dict[str, Any] | None = None  # --apply's listener, use_aws, prefix, vpc
    gates_start: Callable[[RolloutState], None] | None = None  # the gates' counters now
    table: RoutingTable = field(init=False)
    plan: RolloutPlan = field(init=False)
    moves: Mover = field(init=False)

    def __post_init__(self) -> None:
        self.reload()
        if self.gates_start is None:  # gates that keep counters from the start
            self.gates_start = getattr(self.gates, "start", None)
        self.moves = self.mover or RouteMover(
            self.routing, self.route, self.plan.to, self.push, self.read_back
        )

    def reload(self) -> None:
        self.table = load_table(self.routing)
        route = self.table.route(self.route)
        if route.rollout is None:
            raise ConfigError(
                f"{self.routing}: route {self.route!r} has no rollout block; add one (README: "
                "routing.yaml reference, rollout)"
            )
        self.plan = route.rollout

    # -- the state ----------------------------------------------------------------------

    def begin(self, *, restart: bool = False) -> RolloutState:
        """The state to continue, or a new rollout's (a finished one starts over)."""
        state = self.store.load()
        if state is not None and not state.phase.finished and not restart:
            if (state.baseline, state.canary) != (self.plan.baseline, self.plan.to):
                raise ConfigError(
                    f"route {self.route!r}: a rollout {state.baseline} → {state.canary} is "
                    f"under way; the plan now says {self.plan.baseline} → {self.plan.to}. "
                    "Abort it first, or start over with --restart"
                )
            self._with_start_share(state.start_share)
            steps = [s.share for s in self.plan.steps]
            moving = state.phase in (Phase.PROGRESSING, Phase.BAKING) and state.pending is None
            if state.step >= len(steps) or (
                moving and state.step >= 0 and steps[state.step] != state.configured
            ):
                raise ConfigError(
                    f"route {self.route!r}: the rollout under way is at step {state.step + 1} "
                    f"({state.configured / 10:g} %), which the plan's steps "
                    f"({', '.join(f'{s / 10:g}' for s in steps)} %) no longer have; abort it "
                    "or start over with --restart"
                )
            return state
        if state is not None:
            self.store.reset()
        current = self.current_share()
        now = self.clock()
        state = RolloutState(
            route=self.route,
            baseline=self.plan.baseline,
            canary=self.plan.to,
            started=now,
            configured=current,
            routing=str(self.routing.resolve()),
            apply=self.apply_to if self.apply_to is not None else ({} if self.push else None),
        )
        if 0 < current < 1000 and current not in {s.share for s in self.plan.steps}:
            state.start_share = current  # judged where it is before it moves up
            self._with_start_share(current)
        if self.gates_start is not None:
            try:
                self.gates_start(state)
            except Exception as exc:
                self.say(f"the gates' counters could not be read yet: {exc}")
        self._event(state, "started", reason=f"{self.plan.to} at {current / 10:g} %")
        self.store.save(state)
        return state

    def _with_start_share(self, share: int | None) -> None:
        """The plan with a first step at ``share``, the weight the route was found at
        between two steps (with the parameters of the step above it)."""
        if share is None or share in {s.share for s in self.plan.steps}:
            return
        above = next(s for s in self.plan.steps if s.share > share)
        steps = sorted([*self.plan.steps, replace(above, share=share)], key=lambda s: s.share)
        self.plan = replace(self.plan, steps=tuple(steps))

    def file_share(self) -> int | None:
        """The canary's share in routing.yaml now (None if the file cannot be read)."""
        try:
            return load_table(self.routing).route(self.route).share_of(self.plan.to)
        except (ConfigError, KeyError):
            return None

    def current_share(self) -> int:
        """The canary's share in the file now, tenths (a new rollout starts from it)."""
        return self.table.route(self.route).share_of(self.plan.to)

    def canary_url(self) -> str:
        """The address pre-checks get as ``{url}``."""
        return self.table.backends[self.plan.to].url or ""

    def _event(self, state: RolloutState, event: str, **details: Any) -> None:
        entry = state.record(self.clock(), event, **details)
        steps = len(self.plan.steps)
        where = f"step {state.step + 1}/{steps}" if state.step >= 0 else "before step 1"
        if event == "step":
            weight, why = details.get("weight", 0), details.get("reason", "")
            self.say(f"{where}: {state.canary} at {weight:g} % — {why}")
        elif event not in ("weight", "analysis"):
            said = details.get("reason") or details.get("command") or ""
            self.say(f"{where}: {event}" + (f" — {said}" if said else ""))
        self._audit({"action": f"rollout.{event}", "step": state.step + 1, **entry})

    def _log_path(self) -> Path:
        log = Path(self.table.settings.audit_log)
        return log if log.is_absolute() else self.routing.resolve().parent / log

    def _logged(self, action: str, intent: int) -> bool:
        """Whether the audit log's tail already has this change's line (a controller
        killed between the line and its state write must not log the change twice)."""
        try:
            with open(self._log_path(), "rb") as handle:
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - 65536))
                tail = handle.read().decode("utf-8", "replace").splitlines()[1:]
        except FileNotFoundError:
            return False
        for line in reversed(tail):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("action") == action and entry.get("intent") == intent:
                return True
        return False

    def _audit(self, entry: dict[str, Any]) -> None:
        log = self._log_path()
        log.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "who": self.who,
            "route": self.route,
            **{k: v for k, v in entry.items() if k != "at"},
        }
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    # -- changes ------------------------------------------------------------------------

    def _set_share(
        self, state: RolloutState, share: int, why: str, step: int | None = None
    ) -> bool:
        """Give the canary ``share`` (intent first) and, with ``step``, enter that step;
        False when the edit or AWS refused (nothing changed, the rollout pauses)."""
        if state.pending is None and state.configured == share and step is None:
            return True  # already so (a restart after the change, before its next step)
        if state.pending is None or state.pending.get("share") != share:
            state.seq += 1
            state.pending = {"id": state.seq, "share": share, "reason": why, "step": step}
            self.store.save(state)
        return self._finish_pending(state)

    def _finish_pending(self, state: RolloutState) -> bool:
        pending = state.pending
        if pending is None:
            return True
        share = int(pending["share"])
        try:
            described = self.moves.move(share, f"{self.who} #{pending['id']}")
        except (AwsError, ConfigError) as exc:
            if share == 0:
                raise  # a rollback must complete: the caller retries it
            state.pending = None
            state.paused_from = str(state.phase)
            state.phase = Phase.PAUSED
            state.paused_reason = (
                f"could not set {state.canary} to {share / 10:g} %: {exc}; nothing changed"
            )
            self._event(state, "paused", reason=state.paused_reason)
            self.store.save(state)
            return False
        state.configured = share
        actual = self.moves.read_back()
        if actual is not None:
            state.actual = actual
            if abs(actual - share / 10) > 0.05:
                state.pending = None
                state.paused_from = str(state.phase)
                state.phase = Phase.PAUSED
                state.paused_reason = (
                    f"AWS reads back {actual:g} % for {state.canary}, not {share / 10:g} %"
                )
                self._event(state, "paused", reason=state.paused_reason)
                self.store.save(state)
                return False
        state.pending = None
        why = str(pending.get("reason", ""))
        intent = int(pending["id"])
        if not self._logged("rollout.weight", intent):
            self._event(
                state, "weight", reason=why, share=share / 10, intent=intent, change=described
            )
        if pending.get("step") is not None:
            index = int(pending["step"])
            state.step = index
            state.phase = Phase.PROGRESSING
            state.step_started = self.clock()
            state.step_baseline = state.step_canary = state.step_canary_errors = 0
            state.resumed_at = None
            if not self._logged("rollout.step", intent):
                self._event(
                    state, "step", reason=why, weight=self.plan.steps[index].percent, intent=intent
                )
        self.store.save(state)
        return True

    def _enter_step(self, state: RolloutState, index: int, why: str) -> bool:
        return self._set_share(state, self.plan.steps[index].share, why, step=index)

    def rollback(self, state: RolloutState, why: str) -> None:
        """The canary to 0 %, retried until the edit (and AWS) take it."""
        delay = 1.0
        while True:
            try:
                self._set_share(state, 0, why)
                break
            except (AwsError, ConfigError) as exc:
                self.say(f"rollback of {self.route} failed ({exc}); retrying in {delay:g}s")
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        state.phase = Phase.ROLLED_BACK
        state.reason = why
        self._event(state, "rolled_back", reason=why)
        self.store.save(state)

    def _promote(self, state: RolloutState, why: str) -> None:
        if self._set_share(state, 1000, why):
            try:
                moved = (
                    self.moves.promote(f"{self.who} promote")
                    if isinstance(self.moves, Promotes)
                    else None
                )
            except (AwsError, ConfigError) as exc:
                state.paused_from = str(state.phase)
                state.phase = Phase.PAUSED
                state.paused_reason = f"could not promote {state.canary}: {exc}; nothing changed"
                self._event(state, "paused", reason=state.paused_reason)
                self.store.save(state)
                return
            if moved is not None:
                self._event(state, "moved", reason=why, change=moved)
            state.phase = Phase.PROMOTED
            state.reason = why
            self._event(state, "promoted", reason=why)
            self.store.save(state)

    # -- commands -----------------------------------------------------------------------

    def handle_commands(self, state: RolloutState) -> None:
        for command in self.store.commands(state.commands_seen):
            state.commands_seen = int(command["n"])
            name, who = command["command"], command.get("who", "?")
            if state.phase.finished:
                self._event(state, "ignored", command=name, by=who, reason="already finished")
            elif name == "abort":
                self.rollback(state, f"aborted by {who}")
            elif name == "pause" and state.phase is not Phase.PAUSED:
                state.paused_from = str(state.phase)
                state.phase = Phase.PAUSED
                state.paused_reason = f"paused by {who}"
                self._event(state, "paused", reason=state.paused_reason)
            elif name == "resume" and state.phase is Phase.PAUSED:
                state.phase = Phase(state.paused_from or Phase.PROGRESSING)
                if state.phase is Phase.PAUSED or (state.step < 0):
                    state.phase = Phase.PRE_CHECKS if state.step < 0 else Phase.PROGRESSING
                state.paused_reason = None
                state.resumed_at = self.clock()
                state.provider_errors = 0
                self._event(state, "resumed", by=who)
            elif name == "promote":
                self._skip(state, who, bool(command.get("full")))
            self.store.save(state)

    def _skip(self, state: RolloutState, who: str, full: bool) -> None:
        if full or state.step + 1 >= len(self.plan.steps):
            self._promote(state, f"promoted by {who}")
            return
        nxt = max(state.step + 1, first_step(self.plan, state.configured))
        self._enter_step(state, nxt, f"skipped ahead by {who}")

    # -- the loop -----------------------------------------------------------------------

    def run(self, *, restart: bool = False) -> int:
        with self.store.lease():
            state = self.begin(restart=restart)
            self.recover(state)
            return self._loop(state)

    def recover(self, state: RolloutState) -> None:
        """Finish the change a dead controller left half done — unless an abort waits and
        that change would raise the canary: then it is dropped, never made first."""
        pending = state.pending
        if pending is None:
            return
        share = int(pending["share"])
        waiting = self.store.commands(state.commands_seen)
        if share > state.configured and any(c["command"] == "abort" for c in waiting):
            self._event(
                state, "dropped", reason=f"the change to {share / 10:g} % left half done: an "
                "abort waits",
            )  # fmt: skip
            state.pending = None
            found = self.file_share()  # the edit may have landed before the state did
            if found is not None:
                state.configured = found
            self.store.save(state)
            return
        self.say(f"finishing the change cut off last time: {share / 10:g} %")
        if share == 0:
            self.rollback(state, str(pending.get("reason", "rollback")))
        else:
            self._finish_pending(state)

    def _loop(self, state: RolloutState) -> int:
        while True:
            self.handle_commands(state)
            if state.phase is Phase.PROMOTED:
                self.say(f"{self.route}: promoted — {state.reason}")
                return EXIT_PROMOTED
            if state.phase is Phase.ROLLED_BACK:
                self.say(f"{self.route}: rolled back — {state.reason}")
                return EXIT_ROLLED_BACK
            if state.phase is Phase.PAUSED:
                self.say(f"{self.route}: paused — {state.paused_reason}")
                return EXIT_PAUSED
            if state.phase is Phase.PRE_CHECKS:
                self._pre_checks(state)
                continue
            if self._changed_by_hand(state):
                continue
            self._analyse(state)
            if state.phase in (Phase.PROGRESSING, Phase.BAKING):
                self._wait(state, self.plan.interval)

    def _changed_by_hand(self, state: RolloutState) -> bool:
        """Someone moved the route meanwhile (shift, admin API, an edit of the file): the
        rollout pauses where the file says, never moving traffic back over a human."""
        found = self.file_share()
        if found is None or found == state.configured or state.pending is not None:
            return False
        state.paused_reason = (
            f"{self.route} changed by hand: {state.canary} at {found / 10:g} % in the file, "
            f"the rollout had set {state.configured / 10:g} %; `rollout resume` continues "
            "from the file's weight, `rollout abort` rolls back"
        )
        state.configured = found
        state.paused_from = str(state.phase)
        state.phase = Phase.PAUSED
        self._event(state, "paused", reason=state.paused_reason)
        self.store.save(state)
        return True

    def _wait(self, state: RolloutState, seconds: float) -> None:
        """Until the next analysis, or a command; with ``analysis.watch`` a look for a
        failure every ``watch`` seconds meanwhile (a failed verdict rolls back at once)."""
        deadline = self.clock() + seconds
        every = self.plan.analysis.watch_every
        look = self.clock() + every if 0 < every < seconds else math.inf
        while self.clock() < deadline:
            if self.store.commands(state.commands_seen):
                return
            if self.clock() >= look:
                # a human's edit meanwhile pauses the rollout, as before an analysis: a
                # look never judges (nor rolls back) a weight the rollout did not set
                if self._changed_by_hand(state) or self._analyse(state, watching=True):
                    return
                look = self.clock() + every
            self.sleep(min(POLL, max(0.0, min(deadline, look) - self.clock())))

    def _pre_checks(self, state: RolloutState) -> None:
        url = self.canary_url()
        for check in self.plan.pre_checks:
            argv = [
                part.format(url=url, python=sys.executable, route=self.route)
                for part in shlex.split(check.run)
            ]
            self.say(f"pre-check {check.name}: {' '.join(argv)}")
            code = self._run(argv, check.timeout)
            self._event(state, "pre_check", check=check.name, exit=code)
            if code != 0:
                why = f"pre-check {check.name} failed (exit {code}) before any traffic"
                self.rollback(state, why)
                return
        index = first_step(self.plan, state.configured)
        self._enter_step(state, index, "pre-checks passed" if self.plan.pre_checks else "start")

    def _run(self, argv: list[str], timeout: float) -> int:
        if self.run_command is not None:
            return self.run_command(argv, timeout)
        try:
            return subprocess.run(argv, timeout=timeout, check=False).returncode  # noqa: S603
        except subprocess.TimeoutExpired:
            return 124
        except OSError:
            return 127

    def _read(self, state: RolloutState) -> tuple[Window | None, Verdict | None]:
        try:
            baseline, canary = self.provider.read(self.route, state.baseline, state.canary)
        except ProviderError as exc:
            state.provider_errors += 1
            return None, Verdict("provider", Result.PROVIDER_ERROR, str(exc))
        state.provider_errors = 0
        last = state.last_reading or {}
        then_b, then_c = _counts(last.get("baseline")), _counts(last.get("canary"))
        now = self.clock()
        state.last_reading = {
            "baseline": _plain(baseline),
            "canary": _plain(canary),
            "at": now,
        }
        if then_b is None or then_c is None:
            return None, None  # the first reading is the origin
        if baseline.went_back(then_b) or canary.went_back(then_c):
            # a facade restarted (or one of several did): what the others counted since
            # their start would come back as new; this reading is the new origin
            return None, None
        window = Window(
            baseline.minus(then_b), canary.minus(then_c), now - float(last.get("at", now))
        )
        return window, None

    def _analyse(self, state: RolloutState, *, watching: bool = False) -> bool:
        """One analysis and its decision. ``watching`` (a look between two analyses): the
        window goes to the analysis as any other, but only a failed verdict is acted on
        (and logged) — passes, waits and provider errors wait for the next analysis.
        True when a decision was made."""
        analyzer = self.analyzer_factory(self.plan.analysis, state.analyzer or None)
        analyzer.start_step(state.step)
        errors_before = state.provider_errors
        window, failure = self._read(state)
        if window is not None:
            analyzer.add(window)
            state.step_baseline += window.baseline.requests
            state.step_canary += window.canary.requests
            state.step_canary_errors += window.canary.errors
            total = state.step_baseline + state.step_canary
            state.observed = 100.0 * state.step_canary / total if total else None
        step = self.plan.steps[state.step]
        verdicts = (
            [failure]
            if failure is not None
            else analyzer.verdicts(state.step_canary, state.step_baseline, step.min_sample)
        )
        state.analyzer = analyzer.to_dict()
        if watching and not any(v.result is Result.FAIL for v in verdicts):
            state.provider_errors = errors_before  # counted (and reset) at analyses only
            self.store.save(state)
            return False
        gates: list[Verdict] = []
        ready = (
            failure is None
            and state.phase is Phase.PROGRESSING
            and self.clock() - state.step_started >= step.min_time
            and state.step_canary >= step.min_sample
            and all(v.result is Result.PASS for v in verdicts)
        )
        if ready and self.gates is not None:
            gates = self.gates(state)
        decision = decide(self.plan, state, verdicts, gates, self.clock())
        state.verdicts = [v.as_dict() for v in verdicts]
        state.gates = [g.as_dict() for g in gates]
        state.reason = decision.reason
        self._audit(
            {
                "action": "rollout.analysis",
                "step": state.step + 1,
                "decision": str(decision.action),
                "reason": decision.reason,
                "verdicts": state.verdicts,
                "gates": state.gates,
                "observed": state.observed,
                "configured": state.configured / 10,
            }
        )
        self.store.save(state)
        self.say(
            f"step {state.step + 1}/{len(self.plan.steps)} at {state.configured / 10:g} %: "
            + ", ".join(f"{v.metric} {v.result}" for v in [*verdicts, *gates])
            + f" — {decision.action}: {decision.reason}"
        )
        self._act(state, decision)
        return True

    def _act(self, state: RolloutState, decision: Decision) -> None:
        if decision.action is Action.ROLLBACK:
            self.rollback(state, decision.reason)
        elif decision.action is Action.PAUSE:
            state.paused_from = str(state.phase)
            state.phase = Phase.PAUSED
            state.paused_reason = decision.reason
            self._event(state, "paused", reason=decision.reason)
        elif decision.action is Action.ADVANCE:
            self._enter_step(state, state.step + 1, decision.reason)
        elif decision.action is Action.BAKE:
            state.phase = Phase.BAKING
            state.step_started = self.clock()
            self._event(state, "baking", reason=decision.reason, seconds=self.plan.bake)
        elif decision.action is Action.PROMOTE:
            self._promote(state, decision.reason)
        self.store.save(state)


def describe(state: RolloutState, plan: RolloutPlan | None, holder: int | None) -> dict[str, Any]:
    """``rollout status --json``: the state with its plan's numbers, for people and tools.
    ``configured`` is what routing.yaml says now (a human may have moved it since)."""
    steps = len(plan.steps) if plan else 0
    step = plan.steps[state.step] if plan and 0 <= state.step < steps else None
    configured = state.configured
    if state.routing:
        # unreadable or invalid right now: what the rollout last set
        with contextlib.suppress(ConfigError, KeyError, OSError):
            configured = load_table(state.routing).route(state.route).share_of(state.canary)
    return {
        "route": state.route,
        "state": str(state.phase),
        "from": state.baseline,
        "to": state.canary,
        "step": state.step + 1,
        "steps": steps,
        "weights": [s.percent for s in plan.steps] if plan else [],
        "configured": {state.canary: configured / 10, state.baseline: 100 - configured / 10},
        "observed": None
        if state.observed is None
        else {
            state.canary: round(state.observed, 2),
            state.baseline: round(100 - state.observed, 2),
        },
        "actual": state.actual,
        "step_started": state.step_started,
        "sample": {
            "canary": state.step_canary,
            "baseline": state.step_baseline,
            "required": step.min_sample if step else None,
            "min_time": step.min_time if step else None,
        },
        "verdicts": state.verdicts,
        "gates": state.gates,
        "reason": state.reason,
        "paused_reason": state.paused_reason,
        "pending": state.pending,
        "controller": holder,
        "history": state.history[-20:],
    }


__all__ = ["EXIT_PAUSED", "EXIT_PROMOTED", "EXIT_ROLLED_BACK", "Controller", "describe"]
