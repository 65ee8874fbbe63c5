"""A controller killed at any instant — before or after any write of its state, of the
routing file or of the audit log — and restarted neither repeats nor loses a shift, and
a rollback requested meanwhile still completes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import facade.routing.edit as edit
from facade.rollout.controller import EXIT_PROMOTED, EXIT_ROLLED_BACK, Controller
from facade.rollout.engine import Phase
from facade.rollout.samples import Result
from facade.rollout.state import RolloutStore
from tests.rollout.controller_kit import (
    Clock,
    Provider,
    always,
    audit,
    make,
    saved,
    share,
    write_routing,
)


class Killed(BaseException):
    """The process died here (nothing after this point ran)."""


@contextmanager
def kill_at(point: int | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Count every durable write; die just before (odd) or just after (even) write number
    ``(point + 1) // 2``. Yields the names of the writes seen."""
    seen: list[str] = []

    def wrap(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kw: Any) -> Any:
            seen.append(name)
            number = len(seen)
            if point is not None and point == 2 * number - 1:
                raise Killed(f"before {name} #{number}")
            result = func(*args, **kw)
            if point is not None and point == 2 * number:
                raise Killed(f"after {name} #{number}")
            return result

        return wrapped

    monkeypatch.setattr(RolloutStore, "save", wrap("state", RolloutStore.save))
    monkeypatch.setattr(edit, "write_atomically", wrap("routing", edit.write_atomically))
    monkeypatch.setattr(Controller, "_audit", wrap("audit", Controller._audit))
    yield seen
    monkeypatch.undo()


def _weights(directory: Path) -> list[float]:
    return [e["share"] for e in audit(directory) if e.get("action") == "rollout.weight"]


def _run_to_the_end(directory: Path, clock: Clock, provider: Provider, **kw: Any) -> int:
    """A fresh controller (a new process) on what the last one left."""
    controller, _, _ = make(directory, clock=clock, provider=provider, **kw)
    return controller.run()


def test_every_write_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_routing(tmp_path)
    with kill_at(None, monkeypatch) as seen:
        controller, _, _ = make(tmp_path)
        assert controller.run() == EXIT_PROMOTED
    assert {"state", "routing", "audit"} <= set(seen)
    assert seen.count("routing") == 4


def _points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    tmp_path.mkdir()
    write_routing(tmp_path, min_time=10, bake=10)
    with kill_at(None, monkeypatch) as seen:
        controller, _, _ = make(
            tmp_path, provider=Provider(tmp_path / "routing.yaml", per_read=1000)
        )
        controller.run()
    return 2 * len(seen)


def test_killed_at_every_instant_and_restarted_the_rollout_ends_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = _points(tmp_path / "count", monkeypatch)
    assert points > 40
    for point in range(1, points + 1):
        here = tmp_path / f"p{point}"
        here.mkdir()
        write_routing(here, min_time=10, bake=10)
        clock = Clock()
        provider = Provider(here / "routing.yaml", per_read=1000)
        with kill_at(point, monkeypatch), pytest.raises(Killed):
            _run_to_the_end(here, clock, provider)
        assert _run_to_the_end(here, clock, provider) == EXIT_PROMOTED, point
        assert share(here) == 100, point
        assert _weights(here) == [1, 10, 50, 100], (point, _weights(here))
        steps = [e["weight"] for e in audit(here) if e.get("action") == "rollout.step"]
        assert steps == [1, 10, 50, 100], (point, steps)


def test_an_abort_sent_while_the_controller_was_dead_mid_change_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = _points(tmp_path / "count", monkeypatch)
    for point in range(1, points + 1, 2):  # every other instant: each stage still met
        here = tmp_path / f"p{point}"
        here.mkdir()
        write_routing(here, min_time=10, bake=10)
        clock = Clock()
        provider = Provider(here / "routing.yaml", per_read=1000)
        with kill_at(point, monkeypatch), pytest.raises(Killed):
            _run_to_the_end(here, clock, provider)
        state = RolloutStore(here / "state", "orders").load()
        if state is None:
            continue  # died before the rollout existed: there is nothing to abort
        RolloutStore(here / "state", "orders").send("abort", "operator")
        result = _run_to_the_end(here, clock, provider)
        if saved(here).phase is Phase.PROMOTED and result == EXIT_PROMOTED:
            # it had finished before it died: the abort comes after the end
            assert state.phase is Phase.PROMOTED or state.pending is not None, point
            continue
        assert result == EXIT_ROLLED_BACK, point
        assert share(here) == 0, point
        assert saved(here).pending is None, point
        moved = _weights(here)
        assert not moved or moved[-1] == 0, (point, moved)


def test_a_dead_controllers_lease_is_free_at_once(tmp_path: Path) -> None:
    write_routing(tmp_path)
    store = RolloutStore(tmp_path / "state", "orders")
    controller, _, _ = make(tmp_path, always(Result.PASS), store=store)
    assert store.holder() is None
    assert controller.run() == EXIT_PROMOTED
    assert store.holder() is None
