"""Review of ``analysis.watch``: a look between two analyses must not act on a route a
human changed meanwhile, and must not change how provider errors are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from facade.rollout.controller import EXIT_PAUSED, EXIT_ROLLED_BACK
from facade.rollout.engine import Phase
from facade.routing.edit import apply_edit
from tests.rollout.controller_kit import Clock, saved, share, write_routing
from tests.rollout.test_watch import Traffic, controller


class Stop(Exception):
    """Ends a rollout that would otherwise run forever."""


def test_a_look_does_not_roll_back_over_a_human(tmp_path: Path) -> None:
    # the rollout enters 10 %; 2.5 s later a human shifts the route to 50 % by hand, and
    # from then on the canary fails half its requests. The rollout's rule: a route
    # changed by hand pauses where the file says, "never moving traffic back over a
    # human" (Controller._changed_by_hand) — checked before every analysis. A look
    # between two analyses skips that check and rolls the human's 50 % back to 0.
    routing = write_routing(tmp_path, min_time=30, watch=1)
    clock = Clock()
    traffic = Traffic(routing, clock, rate=1000.0, fault=0.5)
    run = controller(tmp_path, traffic, clock)
    edit_at: list[float] = []
    original_enter, original_sleep = run._enter_step, clock.sleep

    def enter(state, index, why):  # type: ignore[no-untyped-def]
        entered = original_enter(state, index, why)
        if index == 1:
            edit_at.append(clock.now + 2.5)
        return entered

    def sleep(seconds: float) -> None:
        original_sleep(seconds)
        if edit_at and clock.now >= edit_at[0]:
            edit_at.clear()
            apply_edit(routing, "shift", "orders", backend="orders", percent=50, who="human")
            traffic.fault_from = clock.now

    run._enter_step = enter  # type: ignore[method-assign]
    run.sleep = sleep
    code = run.run()
    state = saved(tmp_path)
    assert share(tmp_path) == 50, "the human's weight was moved back by the rollout"
    assert code == EXIT_PAUSED
    assert state.phase is Phase.PAUSED
    assert state.paused_reason is not None
    assert "changed by hand" in state.paused_reason


def test_successful_looks_do_not_reset_the_provider_error_count(tmp_path: Path) -> None:
    # provider_errors: 3 consecutive provider errors *at analyses* pause the rollout, and
    # a look's error "counts at analyses only" — but a look's successful reading resets
    # the count to 0 (Controller._read), so a provider that refuses at every analysis
    # and answers in between never pauses: the rollout holds at its step forever.
    routing = write_routing(tmp_path, min_time=30, watch=1)
    clock = Clock()
    traffic = Traffic(routing, clock, rate=1000.0)
    run = controller(tmp_path, traffic, clock)
    analysing = [False]
    original_analyse = run._analyse
    calls = [0]

    def analyse(state, *, watching=False):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] > 500:
            raise Stop
        analysing[0] = not watching and state.step >= 0
        return original_analyse(state, watching=watching)

    original_read = traffic.read

    def read(route, baseline, canary):  # type: ignore[no-untyped-def]
        counts = original_read(route, baseline, canary)
        if analysing[0] and traffic.reads > 1:  # every analysis after the origin
            from facade.rollout.providers import ProviderError

            raise ProviderError("refused at the analysis")
        return counts

    run._analyse = analyse  # type: ignore[method-assign]
    traffic.read = read  # type: ignore[method-assign]
    try:
        code: int | None = run.run()
    except Stop:
        code = None
    assert code == EXIT_PAUSED, "three analyses in a row without a reading never paused"
    assert code != EXIT_ROLLED_BACK


@pytest.mark.parametrize("watch", [10, 30, 0.05])
def test_a_watch_that_could_never_look_is_refused_with_its_line(
    tmp_path: Path, watch: float
) -> None:
    from facade.exceptions import ConfigError
    from facade.routing.loader import load_table

    write_routing(tmp_path, watch=watch)
    with pytest.raises(ConfigError) as refused:
        load_table(tmp_path / "routing.yaml")
    message = str(refused.value)
    assert "routing.yaml:" in message
    assert "analysis.watch" in message
    assert "below the interval (10 s)" in message
