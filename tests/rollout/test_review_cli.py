"""Adversarial review of `strangler rollout`'s commands from other terminals: what
`resume`, `abort` and `start` do on states they were not written for, and their exit
codes (0 promoted, 1 rolled back, 2 bad input, 3 paused)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import facade.rollout.cli as rollout_cli
from facade.cli import main
from facade.rollout.controller import EXIT_ROLLED_BACK, Controller, RouteMover
from facade.rollout.engine import Phase
from facade.rollout.samples import Result
from facade.rollout.state import RolloutStore
from tests.rollout.controller_kit import Clock, always, make, saved, share, write_routing


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_routing(tmp_path)
    monkeypatch.setenv("STRANGLER_ROLLOUT_DIR", str(tmp_path / "state"))
    return tmp_path


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def _fake_time(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The CLI's controllers on a fake clock (their provider is the real one, pointed at
    a port where nothing listens: every reading is a provider error)."""
    clock = Clock()
    real = rollout_cli._controller

    def controller(*args: Any, **kw: Any) -> Controller:
        built = real(*args, **kw)
        built.clock, built.sleep = clock, clock.sleep
        return built

    monkeypatch.setattr(rollout_cli, "_controller", controller)
    monkeypatch.setenv("STRANGLER_METRICS_URL", "http://127.0.0.1:9")
    return clock


def test_resume_of_a_rolled_back_rollout_does_not_start_a_new_one(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rollout resume` is "resume a paused rollout". On a rollout that was rolled back
    (the canary failed) it calls `Controller.run()`, whose `begin` sees a finished state,
    archives it and **starts a brand-new rollout**: the canary that was just rolled back
    gets traffic again (1 %, then on). It should refuse (nothing to resume, exit 2)."""
    controller, _, _ = make(here, always(Result.FAIL))
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0
    _fake_time(monkeypatch)
    code = _cli("rollout", "resume", "orders", "--routing", str(here / "routing.yaml"))
    assert share(here) == 0, f"`resume` put the rolled-back canary back on {share(here)} %"
    assert code == 2
    assert saved(here).phase is Phase.ROLLED_BACK


def test_abort_still_rolls_back_when_the_rollout_block_was_removed(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollout is under way (controller killed at 10 %), and someone deletes the
    route's `rollout:` block (or the review reverts it). `rollout abort` builds a full
    controller first — which needs the block — so the abort ends with "has no rollout
    block" (exit 2) and the canary keeps its 10 %, although the state knows the route,
    the canary and the baseline, which is all a rollback needs."""

    class Stop(BaseException):
        pass

    real = RouteMover.move

    def move(self: RouteMover, share_: int, who: str) -> str:
        if share_ == 500:
            raise Stop
        return real(self, share_, who)

    monkeypatch.setattr(RouteMover, "move", move)
    controller, _, _ = make(here)
    with pytest.raises(Stop):
        controller.run()
    monkeypatch.setattr(RouteMover, "move", real)
    path = here / "routing.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("    rollout:")] + "default: monolith\n")
    assert share(here) == 10
    code = _cli("rollout", "abort", "orders", "--routing", str(path))
    assert share(here) == 0, f"abort left the canary at {share(here)} % (exit {code})"
    assert code == 0


def test_a_crash_of_the_controller_does_not_exit_with_the_rolled_back_code(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`start` on a rollout under way whose plan now has fewer steps dies with a traceback
    — exit status 1, which the documentation defines as *rolled back*. A script that
    runs `strangler rollout start orders || page "rolled back"` is told the canary is at
    0 % while it has 100 %. Internal errors need their own status (not 0/1/3)."""

    class Stop(BaseException):
        pass

    real = RouteMover.move

    def move(self: RouteMover, share_: int, who: str) -> str:
        out = real(self, share_, who)
        if share_ == 1000:
            raise Stop
        return out

    monkeypatch.setattr(RouteMover, "move", move)
    controller, _, _ = make(here, store=RolloutStore(here / "state", "orders"))
    with pytest.raises(Stop):
        controller.run()
    path = here / "routing.yaml"
    path.write_text(path.read_text().replace("steps: [1, 10, 50, 100]", "steps: [50, 100]"))
    env = {
        **os.environ,
        "STRANGLER_ROLLOUT_DIR": str(here / "state"),
        "STRANGLER_METRICS_URL": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-m", "facade.cli", "rollout", "start", "orders", "--routing", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert share(here) == 100
    assert done.returncode not in (0, 1, 3), (done.returncode, done.stderr[-600:])
    assert done.returncode == 2, (done.returncode, done.stderr[-600:])


def test_abort_of_an_applied_rollout_without_apply_does_not_leave_aws_on_the_canary(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollout started with `--apply` (each step pushed to the ALB) whose controller
    died at 10 %. `strangler rollout abort orders` — the command the README's "roll back
    now" tells you to type, no `--apply` — carries the abort out itself and moves only
    routing.yaml: the state says rolled_back, the file says 0 %, and the ALB keeps
    sending 10 % to the canary. The state does not record that the rollout was applied,
    so nothing can notice. (`resume` and `promote` without `--apply` likewise walk the
    file on while AWS stays behind.)"""
    import facade.aws.cli as aws_cli

    pushed: list[float] = []

    def push(table: Any) -> None:
        pushed.append(table.route("orders").share_of("orders") / 10)

    class Stop(BaseException):
        pass

    real = RouteMover.move

    def move(self: RouteMover, share_: int, who: str) -> str:
        if share_ == 500:
            raise Stop
        return real(self, share_, who)

    monkeypatch.setattr(RouteMover, "move", move)
    controller, _, _ = make(here, push=push)
    with pytest.raises(Stop):
        controller.run()
    monkeypatch.setattr(RouteMover, "move", real)
    assert pushed == [1, 10]  # the ALB has 10 %

    def cli_push(table: Any, *args: Any) -> None:
        push(table)

    monkeypatch.setattr(aws_cli, "push", cli_push)
    code = _cli("rollout", "abort", "orders", "--routing", str(here / "routing.yaml"))
    if code == 0:
        assert saved(here).phase is Phase.ROLLED_BACK
        assert pushed[-1] == 0, (
            f"rolled back in routing.yaml only; the ALB still has {pushed[-1]} % on the canary"
        )
    else:
        assert code == 2  # refusing ("this rollout was applied: add --apply") is fine too


def test_an_abort_the_controller_never_acknowledged_does_not_exit_0(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a controller alive but busy (a data gate's digest commands, a provider read,
    an ALB apply), `rollout abort` waits 120 s for it to acknowledge, then prints the
    state it finds — "orders: progressing" — and exits 0, as if the abort had been
    carried out. Nothing was rolled back; a script (or a tired human) reading the exit
    status is told otherwise."""
    controller, _, _ = make(here, always(Result.INCONCLUSIVE))
    state = controller.begin()
    controller._pre_checks(state)  # at 1 %, progressing
    clock = Clock()
    import time  # the module facade.rollout.cli waits with

    monkeypatch.setattr(time, "monotonic", clock)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    store = RolloutStore(here / "state", "orders")
    with store.lease():  # the busy controller
        code = _cli("rollout", "abort", "orders", "--routing", str(here / "routing.yaml"))
    assert share(here) == 1
    assert saved(here).phase is Phase.PROGRESSING
    assert code != 0, capsys.readouterr().out
