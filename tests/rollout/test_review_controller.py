"""Adversarial review of the rollout controller: humans editing the route mid-rollout,
crashes followed by an abort, corrupted command files, plans changed under a running
state, counters that go backwards. Each test fails on the code as it landed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facade.exceptions import ConfigError
from facade.rollout.controller import (
    EXIT_PAUSED,
    EXIT_ROLLED_BACK,
    Controller,
    RouteMover,
    describe,
)
from facade.rollout.engine import Phase
from facade.rollout.samples import ArmCounts, Result
from facade.rollout.state import RolloutStore
from facade.routing.edit import apply_edit
from facade.routing.loader import load_table
from tests.rollout.controller_kit import (
    Clock,
    Provider,
    ScriptedAnalyzer,
    always,
    audit,
    make,
    saved,
    share,
    write_routing,
)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    write_routing(tmp_path)
    return tmp_path


class Stop(BaseException):
    """The controller process dies here (kill -9): nothing after this point runs."""


# -- a human moves the route while the rollout runs ---------------------------------------


class HumanRollsBack(Provider):
    """A provider that, once the rollout has put the canary at 10 % and counted one
    window there, lets an operator roll the route back by hand (`strangler shift orders
    0`, the same edit the admin API and `strangler rollback` make)."""

    done: bool = False

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        counts = super().read(route, baseline, canary)
        if not self.done and self._share == 100 and self.reads >= 2:
            apply_edit(self.routing, "shift", "orders", backend="orders", percent=0, who="human")
            self.done = True
        return counts


def _after_human(directory: Path) -> list[tuple[str, float]]:
    """(who, canary weight) of each edit of the file after the human's rollback."""
    edits = [
        (str(e.get("who")), float(e["after"]["orders"]))
        for e in audit(directory)
        if e.get("action") == "shift"
    ]
    index = next(i for i, (who, _) in enumerate(edits) if who == "human")
    return edits[index + 1 :]


def test_a_manual_rollback_during_a_step_is_not_overridden_by_the_next_advance(
    here: Path,
) -> None:
    """An operator who sees trouble rolls the route back by hand (shift to 0, the admin
    API, editing routing.yaml). The controller never notices the file no longer says what
    it last set (state.configured): the step's sample was already met, the verdicts
    (accumulated over the rollout) pass, so at min_time it *advances to 50 %* — undoing
    the human's emergency rollback and sending half the traffic to the canary."""
    provider = HumanRollsBack(here / "routing.yaml")
    controller, _, _ = make(here, provider=provider)
    controller.run()
    assert provider.done, "the human's rollback never happened"
    later = _after_human(here)
    assert all(weight == 0 for _, weight in later), (
        f"the controller moved traffic back onto the canary after a manual rollback: {later}"
    )
    assert share(here) == 0


def test_status_shows_the_weight_in_the_file_not_the_one_the_controller_last_set(
    here: Path,
) -> None:
    """`status --json`'s `configured` comes from the state, never from routing.yaml: after
    a manual `shift`, status keeps reporting the controller's old weight."""
    store = RolloutStore(here / "state", "orders")
    controller, _, _provider = make(here, always(Result.INCONCLUSIVE), store=store)
    store.send("pause", "ops")  # get to step 1 at 1 %, then stop
    state = controller.begin()
    controller._pre_checks(state)
    controller.handle_commands(state)
    assert state.configured == 10
    apply_edit(here / "routing.yaml", "shift", "orders", backend="orders", percent=20, who="human")
    view = describe(saved(here), controller.plan, None)
    assert view["configured"]["orders"] == share(here) == 20, view["configured"]


# -- kill -9 mid-advance, then abort ------------------------------------------------------


def _die_while_advancing_to_50(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the rollout until it has written the intent to go 10 → 50 % and die before the
    edit (kill -9 between intent and edit)."""
    real = RouteMover.move

    def move(self: RouteMover, share_: int, who: str) -> str:
        if share_ == 500:
            raise Stop("killed between the intent and the edit")
        return real(self, share_, who)

    monkeypatch.setattr(RouteMover, "move", move)
    controller, _, _ = make(here)
    with pytest.raises(Stop):
        controller.run()
    monkeypatch.setattr(RouteMover, "move", real)
    state = saved(here)
    assert state.pending is not None
    assert state.pending["share"] == 500
    assert share(here) == 10


def _canary_weights(directory: Path) -> list[float]:
    return [float(e["after"]["orders"]) for e in audit(directory) if e.get("action") == "shift"]


def test_an_abort_after_a_crash_mid_advance_never_raises_the_canary_first(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator aborts a rollout whose controller died while advancing 10 → 50 %.
    Restarted (or `rollout abort` with no controller), it first *finishes the advance*
    — 50 % of the traffic (and with --apply the ALB) on the canary being aborted — and
    only then rolls back. An abort must drop an unfinished increase, not complete it."""
    _die_while_advancing_to_50(here, monkeypatch)
    RolloutStore(here / "state", "orders").send("abort", "operator")
    controller, _, _ = make(here)
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0
    moved = _canary_weights(here)
    assert 50 not in moved, f"the abort went through 50 % first: {moved}"


def test_the_abort_command_without_a_controller_never_raises_the_canary_first(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same, through `strangler rollout abort` while no controller runs (it carries out
    the command itself, "finishing first the change a dead controller left half done")."""
    from facade.cli import main

    _die_while_advancing_to_50(here, monkeypatch)
    monkeypatch.setenv("STRANGLER_ROLLOUT_DIR", str(here / "state"))
    with pytest.raises(SystemExit) as exited:
        main(["rollout", "abort", "orders", "--routing", str(here / "routing.yaml")])
    assert exited.value.code == 0
    assert share(here) == 0
    moved = _canary_weights(here)
    assert 50 not in moved, f"`rollout abort` went through 50 % first: {moved}"


# -- the command file ---------------------------------------------------------------------


def test_one_bad_line_in_the_command_file_does_not_swallow_every_later_abort(
    here: Path,
) -> None:
    """A command file with one unreadable line (hand-edited, a disk-full short write, a
    sender killed mid-line) — `commands()` stops at it for ever, so every later command,
    abort included, is silently never read: the rollout walks on to 100 %."""
    store = RolloutStore(here / "state", "orders")
    store.directory.mkdir(parents=True, exist_ok=True)
    store.commands_path.write_text("this line is not json\n")
    store.send("abort", "operator")
    controller, _, _ = make(here, store=store)
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0


def test_a_sender_killed_mid_line_does_not_swallow_the_next_abort(here: Path) -> None:
    """`rollout pause` killed while appending leaves a line without its newline; the next
    `send` appends to that same line, so the abort is glued to the torn text and lost
    (its `send` still reports it as #2)."""
    store = RolloutStore(here / "state", "orders")
    store.directory.mkdir(parents=True, exist_ok=True)
    store.commands_path.write_text('{"n": 1, "command": "pau')  # torn: no newline
    store.send("abort", "operator")
    controller, _, _ = make(here, store=store)
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0


# -- the plan changed under a rollout that is under way -------------------------------------


def test_a_rollout_under_way_whose_plan_lost_steps_is_refused_not_a_crash(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the controller at the 100 % step, then shorten the plan in routing.yaml
    (steps [50, 100]) and start again: `plan.steps[state.step]` raises IndexError. From
    the CLI that is a traceback with exit status 1 — the documented code for "rolled
    back" — while the canary still has 100 %."""
    real = RouteMover.move

    def move(self: RouteMover, share_: int, who: str) -> str:
        out = real(self, share_, who)
        if share_ == 1000:
            raise Stop("killed after the edit to 100 %")
        return out

    monkeypatch.setattr(RouteMover, "move", move)
    controller, clock, _ = make(here)
    with pytest.raises(Stop):
        controller.run()
    monkeypatch.setattr(RouteMover, "move", real)
    path = here / "routing.yaml"
    path.write_text(path.read_text().replace("steps: [1, 10, 50, 100]", "steps: [50, 100]"))
    controller, _, _ = make(here, clock=clock)
    try:
        controller.run()
    except ConfigError:
        pass  # refusing with a message (exit 2) is fine; so is continuing sanely
    except Exception as exc:
        pytest.fail(f"a changed plan crashed the controller: {exc!r}")


# -- counters that go backwards -----------------------------------------------------------


class TwoFacades:
    """Cumulative counts summed over two facade instances (the Prometheus provider's
    `sum by (backend, status_class)`). Before the rollout the canary had a bad version
    (a rollout rolled back earlier): 600 errors in 10,000 requests, split over both
    instances. The new canary is healthy: no error at all. At the 4th reading instance
    B restarts, so the sums drop by B's share."""

    name = "two-facades"

    def __init__(self) -> None:
        self.reads = 0
        # (requests, errors) per instance and arm
        self.a = {"baseline": [50_000, 50], "canary": [5_000, 300]}
        self.b = {"baseline": [50_000, 50], "canary": [5_000, 300]}

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        self.reads += 1
        if self.reads == 4:
            self.b = {"baseline": [0, 0], "canary": [0, 0]}  # restarted
        elif self.reads > 1:
            for inst in (self.a, self.b):
                inst["baseline"][0] += 495
                inst["baseline"][1] += 1  # the monolith's usual 0.2 %
                inst["canary"][0] += 5  # 1 % to the healthy canary, no errors
        b = [self.a["baseline"][i] + self.b["baseline"][i] for i in (0, 1)]
        c = [self.a["canary"][i] + self.b["canary"][i] for i in (0, 1)]
        return ArmCounts(b[0], b[1]), ArmCounts(c[0], c[1])


def test_one_facade_restarting_does_not_replay_old_history_as_new_canary_errors(
    here: Path,
) -> None:
    """`ArmCounts.minus` treats any decrease as "counted from zero again" and returns the
    whole cumulative reading as the window. Summed over several facades (Prometheus) or
    across a partial restart, that window is everything the surviving instances ever
    counted — including a previous bad canary's errors from before this rollout began —
    and the real analysis (errors test and critical guard) rolls back a canary that has
    not failed a single request."""
    controller = Controller(
        here / "routing.yaml",
        "orders",
        RolloutStore(here / "state", "orders"),
        TwoFacades(),
        clock=(clock := Clock()),
        sleep=clock.sleep,
        say=lambda line: None,
    )
    result = controller.run()
    state = saved(here)
    errors_seen = [v for v in state.verdicts if v["metric"] in ("errors", "critical")]
    assert result != EXIT_ROLLED_BACK, (
        f"a canary with 0 errors was rolled back: {state.reason}; {json.dumps(errors_seen)[:400]}"
    )


def test_a_counter_reset_does_not_fill_a_steps_min_sample_with_old_requests(
    here: Path,
) -> None:
    """The same replay, on the pass side: the step's `min_sample` (and the analysis's
    sample sizes) are met by requests counted before the rollout started."""
    provider = TwoFacades()
    provider.a["canary"][1] = provider.b["canary"][1] = 0  # old canary healthy too
    controller = Controller(
        here / "routing.yaml",
        "orders",
        RolloutStore(here / "state", "orders"),
        provider,
        analyzer_factory=lambda settings, saved_: ScriptedAnalyzer(
            always(Result.INCONCLUSIVE), saved_
        ),
        clock=(clock := Clock()),
        sleep=clock.sleep,
        say=lambda line: None,
    )
    state = controller.begin()
    controller._pre_checks(state)
    for _ in range(4):
        controller._analyse(state)
    # 3 real windows of 10 canary requests each, then the restart
    assert state.step_canary <= 40, (
        f"{state.step_canary} canary requests counted in a step that served ~40"
    )


def test_state_from_an_old_plan_is_status_readable(here: Path) -> None:
    """`status` on a state whose step no longer exists does not crash (this holds)."""
    controller, _, _ = make(here, always(Result.INCONCLUSIVE))
    state = controller.begin()
    state.step = 7
    state.phase = Phase.PROGRESSING
    view = describe(state, load_table(here / "routing.yaml").route("orders").rollout, None)
    assert view["sample"]["required"] is None
    assert EXIT_PAUSED == 3


def test_a_route_between_two_steps_is_not_raised_before_any_analysis(here: Path) -> None:
    """A route an engineer left at 20 % by hand (steps 1, 10, 50, 100). `start` picks
    "the first step at or above the current share" — 50 % — and moves there at once,
    before a single analysis: 2.5 times the canary's traffic on no evidence. With a
    canary that is never shown healthy (always inconclusive) the rollout should pause
    where it found the route, not after raising it."""
    path = here / "routing.yaml"
    path.write_text(
        path.read_text().replace("{monolith: 100, orders: 0}", "{monolith: 80, orders: 20}")
    )
    controller, _, _ = make(here, always(Result.INCONCLUSIVE))
    assert controller.run() == EXIT_PAUSED
    moved = [float(e["after"]["orders"]) for e in audit(here) if e.get("action") == "shift"]
    assert share(here) == 20, f"raised from 20 % to {share(here)} % without any pass: {moved}"


# -- the latency histogram's windows ------------------------------------------------------


def _histogram(at: dict[float, int]) -> tuple[int, ...]:
    """Cumulative Prometheus buckets over the facade's bounds for requests that took
    ``seconds`` (key) ``count`` (value) times."""
    from facade.rollout.samples import LATENCY_BOUNDS

    return tuple(sum(n for s, n in at.items() if s <= bound) for bound in LATENCY_BOUNDS)


class FacadeWithHistory:
    """What the facade's /__facade/metrics gives, cumulative since the facade started,
    with histograms. Before this rollout, an earlier version of the canary was slow
    (1,000 requests at 2 s; it was rolled back). The version now rolled out is exactly as
    fast as the monolith: per reading 990 baseline requests (940 at 40 ms, 50 at 90 ms)
    and 10 canary requests at 40 ms. No errors anywhere."""

    name = "facade"

    def __init__(self) -> None:
        self.baseline = {0.04: 95_000, 0.09: 5_000}
        self.canary = {2.0: 1_000}
        self.reads = 0

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        from facade.rollout.samples import LATENCY_BOUNDS

        self.reads += 1
        if self.reads > 1:
            self.baseline[0.04] += 940
            self.baseline[0.09] += 50
            self.canary[0.04] = self.canary.get(0.04, 0) + 10
        b, c = sum(self.baseline.values()), sum(self.canary.values())
        return (
            ArmCounts(b, 0, LATENCY_BOUNDS, _histogram(self.baseline)),
            ArmCounts(c, 0, LATENCY_BOUNDS, _histogram(self.canary)),
        )


def test_each_window_counts_only_its_own_latency_histogram(here: Path) -> None:
    """`_plain` stores the +Inf bound of the last reading as 1e308 and `_counts` reads it
    back as 1e308, so `ArmCounts.minus` never finds the bounds equal and returns the
    *cumulative* buckets as the window's: every 10 s the latency analysis counts every
    request the facade ever answered again, including the old slow version's, and rolls
    back a canary exactly as fast as the monolith."""
    clock = Clock()
    controller = Controller(
        here / "routing.yaml",
        "orders",
        RolloutStore(here / "state", "orders"),
        FacadeWithHistory(),
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
    )
    result = controller.run()
    state = saved(here)
    latency = next((v for v in state.verdicts if v["metric"] == "latency"), None)
    assert result != EXIT_ROLLED_BACK, f"{state.reason} — {latency}"


def test_a_window_of_100_requests_has_a_histogram_of_100() -> None:
    """The same defect at its smallest: two readings 100 requests apart, through the
    controller's own saving of the last reading."""
    from facade.rollout.controller import _counts, _plain
    from facade.rollout.samples import LATENCY_BOUNDS

    first = ArmCounts(1000, 0, LATENCY_BOUNDS, _histogram({0.04: 1000}))
    second = ArmCounts(1100, 0, LATENCY_BOUNDS, _histogram({0.04: 1100}))
    earlier = _counts(_plain(first))
    assert earlier is not None
    window = second.minus(earlier)
    assert window.requests == 100
    assert window.buckets[-1] == 100, f"the window's histogram holds {window.buckets[-1]}"
