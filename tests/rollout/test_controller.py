"""The controller's loop on a real routing file: every path from start to an exit code."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from facade.exceptions import AwsError
from facade.rollout.controller import EXIT_PAUSED, EXIT_PROMOTED, EXIT_ROLLED_BACK
from facade.rollout.engine import Phase
from facade.rollout.samples import Result, Verdict
from facade.rollout.state import LeaseHeld, RolloutStore
from tests.rollout.controller_kit import (
    Clock,
    Provider,
    always,
    audit,
    make,
    saved,
    share,
    weights,
    write_routing,
)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    write_routing(tmp_path)
    return tmp_path


def test_a_healthy_canary_walks_every_step_bakes_and_is_promoted(here: Path) -> None:
    controller, clock, _ = make(here)
    started = clock.now
    assert controller.run() == EXIT_PROMOTED
    assert weights(here) == [1, 10, 50, 100]
    assert share(here) == 100
    state = saved(here)
    assert state.phase is Phase.PROMOTED
    # each step lasted at least its min_time, and the bake its 60 s
    events = [e for e in audit(here) if e.get("action") == "rollout.step"]
    assert len(events) == 4
    assert clock.now - started >= 4 * 30 + 60
    assert any(e.get("action") == "rollout.promoted" for e in audit(here))


def test_a_fail_after_passes_and_inconclusive_rolls_back_at_once(here: Path) -> None:
    plan = [Result.PASS] * 6 + [Result.INCONCLUSIVE] * 3 + [Result.FAIL]

    def script(n: int, canary: int) -> Result:
        return plan[min(n, len(plan)) - 1]

    controller, _, _ = make(here, script, provider=Provider(here / "routing.yaml", per_read=1000))
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0
    assert saved(here).phase is Phase.ROLLED_BACK
    assert weights(here)[-1] == 0
    assert "errors: scripted fail" in saved(here).reason
    decisions = [e["decision"] for e in audit(here) if e.get("action") == "rollout.analysis"]
    assert decisions[-1] == "rollback"
    assert decisions.count("rollback") == 1
    assert weights(here) == [1, 10, 0]  # the 1 % step passed; 10 % held, then failed


def test_low_traffic_stays_inconclusive_and_pauses_for_a_human_at_max_wait(here: Path) -> None:
    controller, clock, _ = make(here, always(Result.INCONCLUSIVE))
    started = clock.now
    assert controller.run() == EXIT_PAUSED
    state = saved(here)
    assert state.phase is Phase.PAUSED
    assert share(here) == 1  # held at the first step, never rolled back
    assert "no pass after 300s" in (state.paused_reason or "")
    assert clock.now - started >= 300


def test_inconclusive_with_rollback_policy_rolls_back(tmp_path: Path) -> None:
    write_routing(tmp_path, "rollback")
    controller, _, _ = make(tmp_path, always(Result.INCONCLUSIVE))
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(tmp_path) == 0


def test_provider_errors_in_a_row_pause_and_never_judge(here: Path) -> None:
    provider = Provider(here / "routing.yaml", failures={1, 2, 3})
    controller, _, _ = make(here, always(Result.FAIL), provider=provider)
    assert controller.run() == EXIT_PAUSED
    state = saved(here)
    assert "3 provider errors in a row" in (state.paused_reason or "")
    assert share(here) == 1  # a failing provider is no fail: nothing rolled back


def test_a_single_provider_error_is_neither_pass_nor_fail(here: Path) -> None:
    provider = Provider(here / "routing.yaml", failures={3})
    controller, _, _ = make(here, provider=provider)
    assert controller.run() == EXIT_PROMOTED
    analyses = [e for e in audit(here) if e.get("action") == "rollout.analysis"]
    errored = [a for a in analyses if a["verdicts"][0]["result"] == "provider_error"]
    assert len(errored) == 1
    assert errored[0]["decision"] == "wait"


def test_a_closed_data_gate_holds_the_step_until_it_opens(here: Path) -> None:
    calls: list[int] = []

    def gates(state: object) -> list[Verdict]:
        calls.append(1)
        if len(calls) < 5:
            return [Verdict("sync", Result.INCONCLUSIVE, "orders-to-lambda: lag 90s over 30s")]
        return [Verdict("sync", Result.PASS, "lag 1s")]

    controller, _, _ = make(here, gates=gates)
    assert controller.run() == EXIT_PROMOTED
    held = [
        a
        for a in audit(here)
        if a.get("action") == "rollout.analysis" and "gate sync" in a["reason"]
    ]
    assert len(held) == 4
    assert all(a["configured"] == 1 for a in held)


def test_a_second_controller_is_refused_while_the_first_runs(here: Path) -> None:
    store = RolloutStore(here / "state", "orders")
    with store.lease():
        controller, _, _ = make(here)
        with pytest.raises(LeaseHeld, match="already running"):
            controller.run()
        assert store.holder() is not None
    assert store.holder() is None


def test_abort_from_another_terminal_during_an_apply_still_rolls_back(here: Path) -> None:
    store = RolloutStore(here / "state", "orders")
    entered, release = threading.Event(), threading.Event()
    pushes: list[float] = []

    def push(table: object) -> None:
        share_now = table.route("orders").share_of("orders")  # type: ignore[attr-defined]
        pushes.append(share_now / 10)
        if share_now == 100:  # the 10 % step: hold the apply until the abort is in
            entered.set()
            assert release.wait(10)

    controller, _, _ = make(here, push=push, store=store)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(controller.run()))
    worker.start()
    assert entered.wait(10)
    store.send("abort", "operator")
    release.set()
    worker.join(10)
    assert result == [EXIT_ROLLED_BACK]
    assert pushes == [1, 10, 0]
    assert share(here) == 0
    assert "aborted by operator" in saved(here).reason


def test_a_failed_apply_pauses_with_the_file_unchanged(here: Path) -> None:
    def push(table: object) -> None:
        if table.route("orders").share_of("orders") == 500:  # type: ignore[attr-defined]
            raise AwsError("ModifyRule: Throttling: rate exceeded")

    controller, _, _ = make(here, push=push)
    assert controller.run() == EXIT_PAUSED
    assert share(here) == 10
    state = saved(here)
    assert "could not set orders to 50 %" in (state.paused_reason or "")
    assert state.pending is None


def test_a_failed_rollback_is_retried_until_it_lands(here: Path) -> None:
    attempts: list[int] = []

    def push(table: object) -> None:
        if table.route("orders").share_of("orders") == 0:  # type: ignore[attr-defined]
            attempts.append(1)
            if len(attempts) < 3:
                raise AwsError("ModifyRule: ServiceUnavailable")

    controller, _, _ = make(here, always(Result.FAIL), push=push)
    assert controller.run() == EXIT_ROLLED_BACK
    assert len(attempts) == 3
    assert share(here) == 0


def test_read_back_that_disagrees_pauses(here: Path) -> None:
    controller, _, _ = make(here, read_back=lambda table: 0.0)
    assert controller.run() == EXIT_PAUSED
    assert "AWS reads back 0 % for orders, not 1 %" in (saved(here).paused_reason or "")


def test_pause_resume_and_promote_commands(here: Path) -> None:
    store = RolloutStore(here / "state", "orders")
    clock = Clock()
    controller, _, _ = make(here, always(Result.INCONCLUSIVE), store=store, clock=clock)
    store.send("pause", "ana")
    assert controller.run() == EXIT_PAUSED
    assert saved(here).paused_reason == "paused by ana"
    store.send("resume", "ana")
    store.send("promote", "ana")  # skip the step that cannot pass
    store.send("promote", "ana", full=True)
    controller, _, _ = make(here, always(Result.INCONCLUSIVE), store=store, clock=clock)
    assert controller.run() == EXIT_PROMOTED
    # paused before the first step; the first promote skips to it, the second to 100 %
    assert weights(here) == [1, 100]
    assert saved(here).reason == "promoted by ana"
    assert [e["event"] for e in audit(here) if e.get("by") == "ana"] == ["resumed"]


def test_a_rollout_continues_from_the_weight_set_by_hand(here: Path) -> None:
    text = (
        (here / "routing.yaml")
        .read_text()
        .replace("{monolith: 100, orders: 0}", "{monolith: 90, orders: 10}")
    )
    (here / "routing.yaml").write_text(text)
    controller, _, _ = make(here)
    assert controller.run() == EXIT_PROMOTED
    assert weights(here) == [50, 100]  # judged at 10 % first, then on


def _with_pre_check(directory: Path, script: str) -> None:
    """A pre-check running ``script`` (Python) with the new backend's url as argument."""
    (directory / "check.py").write_text(script)
    path = directory / "routing.yaml"
    text = path.read_text().replace(
        "      interval: 10\n",
        "      interval: 10\n      pre_checks:\n        - name: smoke\n"
        f'          run: "{{python}} {directory / "check.py"} {{url}}"\n',
    )
    path.write_text(text)


def test_a_failing_pre_check_ends_the_rollout_before_any_traffic_moves(here: Path) -> None:
    _with_pre_check(here, "import sys\nsys.exit(3)\n")
    controller, _, provider = make(here)
    assert controller.run() == EXIT_ROLLED_BACK
    assert share(here) == 0
    assert weights(here) == []  # nothing was ever shifted
    assert provider.reads == 0
    assert "pre-check smoke failed (exit 3) before any traffic" in saved(here).reason


def test_a_passing_pre_check_gets_the_new_backends_url(here: Path) -> None:
    marker = here / "seen"
    _with_pre_check(
        here, f"import pathlib, sys\npathlib.Path({str(marker)!r}).write_text(sys.argv[1])\n"
    )
    controller, _, _ = make(here)
    assert controller.run() == EXIT_PROMOTED
    assert marker.read_text() == "http://127.0.0.1:8002"
