"""The conflict rule of two-way entities (facade.sync.versions): both sides end in the same
state whatever the interleaving, duplicates do nothing, and concurrency is recognised."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from extracted.orders.store import RANKS, STATUSES
from facade.sync.versions import Stamp, decide, wins
from monolith.orders.sync import rank_of


def test_the_greater_rank_then_version_wins_and_ties_go_to_the_origin_sorting_first() -> None:
    paid_late = Stamp(1, 9, "orders-lambda")
    cancelled_early = Stamp(3, 2, "monolith")
    assert wins(cancelled_early, paid_late)
    assert not wins(paid_late, cancelled_early)
    assert wins(Stamp(1, 5, "orders-lambda"), Stamp(1, 4, "monolith"))
    assert wins(Stamp(1, 5, "monolith"), Stamp(1, 5, "orders-lambda"))
    assert not wins(Stamp(1, 5, "orders-lambda"), Stamp(1, 5, "monolith"))


def test_a_redelivered_or_overtaken_change_is_a_duplicate_and_not_a_conflict() -> None:
    current = Stamp(0, 4, "monolith")
    again = decide(Stamp(0, 3, "orders-lambda"), None, current, seen=3, me="monolith")
    assert (again.duplicate, again.apply, again.conflict) == (True, False, False)


def test_a_change_made_on_the_state_held_here_applies_without_conflict() -> None:
    held = Stamp(0, 1, "monolith")
    decision = decide(Stamp(1, 2, "orders-lambda"), held, held, seen=0, me="monolith")
    assert (decision.apply, decision.conflict) == (True, False)


def test_a_concurrent_change_is_counted_by_the_side_whose_own_change_lost() -> None:
    base = Stamp(0, 1, "monolith")
    mine = Stamp(3, 2, "monolith")  # cancelled here
    theirs = Stamp(1, 2, "orders-lambda")  # paid there, on the same base
    winner_side = decide(theirs, base, mine, seen=0, me="monolith")
    assert (winner_side.apply, winner_side.conflict) == (False, False)
    loser_side = decide(mine, base, theirs, seen=0, me="orders-lambda")
    assert (loser_side.apply, loser_side.conflict) == (True, True)


def test_both_sides_rank_an_orders_statuses_alike() -> None:
    assert {status: rank_of(status) for status in STATUSES} == RANKS


@dataclass
class Replica:
    """One side holding one entity. The monolith (``merging`` False) publishes every change
    with the state it was made on as base; the order store (``merging`` True) publishes
    its newest state when flagged, with what the other side last had as base."""

    me: str
    merging: bool
    state: Stamp | None = None
    seen: int = 0
    synced: Stamp | None = None
    outbox: deque[tuple[Stamp, Stamp | None]] = field(default_factory=deque)
    flagged: bool = False
    conflicts: int = 0

    def change(self, rng: random.Random) -> Stamp:
        rank = max(self.state.rank if self.state else 0, rng.choice([0, 1, 1, 2, 3]))
        version = (self.state.version if self.state else 0) + 1
        before, self.state = self.state, Stamp(rank, version, self.me)
        if self.merging:
            self.flagged = True
        else:
            self.outbox.append((self.state, before))
        return self.state

    def pending(self) -> bool:
        return self.flagged if self.merging else bool(self.outbox)

    def publish(self) -> tuple[Stamp, Stamp | None]:
        if self.merging:
            assert self.state is not None
            sent, self.flagged = (self.state, self.synced), False
            self.synced = self.state
            return sent
        return self.outbox.popleft()

    def receive(self, stamp: Stamp, base: Stamp | None) -> None:
        decision = decide(stamp, base, self.state, self.seen, self.me)
        if decision.duplicate:
            return
        self.seen = max(self.seen, stamp.version)
        self.conflicts += decision.conflict
        if decision.apply:
            self.state, self.synced, self.flagged = stamp, stamp, False


Wires = dict[str, deque[tuple[Stamp, Stamp | None]]]


def _deliver_everything(a: Replica, b: Replica, wires: Wires) -> None:
    while any(wires.values()) or a.pending() or b.pending():
        for side, other, wire in ((a, b, "ab"), (b, a, "ba")):
            while side.pending():
                wires[wire].append(side.publish())
            while wires[wire]:
                other.receive(*wires[wire].popleft())


@pytest.mark.parametrize("seed", range(200))
def test_any_interleaving_of_changes_and_deliveries_converges(seed: int) -> None:
    rng = random.Random(seed)
    a, b = Replica("monolith", merging=False), Replica("orders-lambda", merging=True)
    wires: Wires = {"ab": deque(), "ba": deque()}
    made: list[Stamp] = []
    for _ in range(rng.randint(1, 30)):
        step = rng.random()
        side, other, wire = (a, b, "ab") if rng.random() < 0.5 else (b, a, "ba")
        if step < 0.4:
            made.append(side.change(rng))
        elif step < 0.7 and side.pending():
            wires[wire].append(side.publish())
        elif wires[wire]:
            message = wires[wire].popleft() if rng.random() < 0.8 else wires[wire][0]  # dup
            other.receive(*message)
    _deliver_everything(a, b, wires)  # all is delivered at last
    assert a.state == b.state
    if made:
        assert a.state is not None
        assert all(a.state == s or wins(a.state, s) for s in made)  # the greatest stamp won


@pytest.mark.parametrize("seed", range(100))
def test_one_concurrent_change_on_each_side_is_counted_once_whoever_hears_first(
    seed: int,
) -> None:
    rng = random.Random(seed)
    a, b = Replica("monolith", merging=False), Replica("orders-lambda", merging=True)
    wires: Wires = {"ab": deque(), "ba": deque()}
    a.change(rng)
    _deliver_everything(a, b, wires)  # both hold the same state, known to both
    assert (a.conflicts, b.conflicts) == (0, 0)
    a.change(rng)
    b.change(rng)  # neither has heard of the other's change yet
    sides = {"a": (a, "ab", "ba"), "b": (b, "ba", "ab")}  # side, its outgoing, incoming
    for _ in range(rng.randint(0, 8)):  # any interleaving, any duplicates
        side, outgoing, incoming = sides[rng.choice("ab")]
        if rng.random() < 0.5:
            if side.pending():
                wires[outgoing].append(side.publish())
        elif wires[incoming]:
            queue = wires[incoming]
            side.receive(*(queue[0] if rng.random() < 0.3 else queue.popleft()))
    _deliver_everything(a, b, wires)
    assert a.state == b.state
    assert a.conflicts + b.conflicts == 1
