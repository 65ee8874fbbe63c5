"""The conflict rule of two-way entities (facade.sync.conflict), on a model of both sides:
whatever the interleaving of changes and deliveries, both end in the same state, a change
made after another always wins over it, and each conflict is counted exactly once.

The sides here are models that follow the real ones' protocol step by step — the
monolith publishes every change with the state it was made on as base; the orders
store publishes its newest state when flagged, with what the other side last had as
base — and Hypothesis drives them through generated histories. ``test_two_way_sides``
drives the real sides the same way."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from facade.sync.conflict import (
    Backwards,
    Lifecycle,
    Stamp,
    TwoWay,
    decide,
    local_change,
    two_way_env,
    two_way_from_environment,
    wins,
)

LIFECYCLE = Lifecycle("status", ("placed", "paid", "shipped", "cancelled"))


def test_the_greater_rank_then_version_wins_and_ties_go_to_the_origin_sorting_first() -> None:
    paid_late = Stamp(1, 9, "orders")
    cancelled_early = Stamp(3, 2, "monolith")
    assert wins(cancelled_early, paid_late)
    assert not wins(paid_late, cancelled_early)
    assert wins(Stamp(1, 5, "orders"), Stamp(1, 4, "monolith"))
    assert wins(Stamp(1, 5, "monolith"), Stamp(1, 5, "orders"))
    assert not wins(Stamp(1, 5, "orders"), Stamp(1, 5, "monolith"))


def test_a_redelivered_or_overtaken_change_is_a_duplicate_and_not_a_conflict() -> None:
    current = Stamp(0, 4, "monolith")
    again = decide(Stamp(0, 3, "orders"), None, current, seen=3, me="monolith")
    assert (again.duplicate, again.apply, again.conflict) == (True, False, False)


def test_a_change_made_on_the_state_held_here_applies_without_conflict() -> None:
    held = Stamp(0, 1, "monolith")
    decision = decide(Stamp(1, 2, "orders"), held, held, seen=0, me="monolith")
    assert (decision.apply, decision.conflict) == (True, False)


def test_a_local_change_takes_the_next_version_of_the_clock_not_of_the_state() -> None:
    # the state held came from the other side at version 2, but version 7 was seen here
    assert local_change(Stamp(1, 2, "orders"), 7, 1, "monolith") == Stamp(1, 8, "monolith")
    assert local_change(None, 0, 0, "monolith") == Stamp(0, 1, "monolith")


def test_a_local_change_may_not_move_back_through_the_lifecycle() -> None:
    with pytest.raises(Backwards):
        local_change(Stamp(2, 5, "orders"), 5, 1, "monolith")


def test_a_lifecycle_ranks_states_by_their_stage_and_names_a_stranger() -> None:
    assert [LIFECYCLE.rank({"status": s}) for s in LIFECYCLE.order] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="refunded"):
        LIFECYCLE.rank({"status": "refunded"})


def test_the_pairs_travel_through_the_environment_unchanged() -> None:
    pair = TwoWay(("a-to-b", "b-to-a"), ("a", "b"), LIFECYCLE, 1000)
    found = two_way_from_environment({"STRANGLER_SYNC_TWO_WAY": two_way_env([pair])})
    assert found == {"a-to-b": pair, "b-to-a": pair}
    assert pair.id_range("a") == (1, 1000)
    assert pair.id_range("b") == (1000, 2**63)
    with pytest.raises(ValueError, match="STRANGLER_SYNC_TWO_WAY"):
        two_way_from_environment({"STRANGLER_SYNC_TWO_WAY": "[{]"})


# -- a model of both sides ------------------------------------------------------------------

Message = tuple[Stamp, Stamp | None, int]  # stamp, base, change id


@dataclass
class Side:
    """One side holding one entity: ``merging`` False publishes every change (the
    monolith's outbox), True only its newest state (the orders store's flag)."""

    me: str
    merging: bool
    state: Stamp | None = None
    state_id: int = 0  # the change the state is
    clock: int = 0
    seen: int = 0
    synced: Stamp | None = None
    outbox: deque[Message] = field(default_factory=deque)
    flagged: bool = False
    conflicts: int = 0
    adopted: set[int] = field(default_factory=set)  # changes that were ever the state here

    def change(self, rank: int, change_id: int) -> Stamp:
        rank = max(rank, self.state.rank if self.state else 0)  # forward only
        before = self.state
        self.state = local_change(before, self.clock, rank, self.me)
        self.clock = self.state.version
        self.state_id = change_id
        self.adopted.add(change_id)
        if self.merging:
            self.flagged = True
        else:
            self.outbox.append((self.state, before, change_id))
        return self.state

    def pending(self) -> bool:
        return self.flagged if self.merging else bool(self.outbox)

    def publish(self) -> Message:
        if self.merging:
            assert self.state is not None
            sent = (self.state, self.synced, self.state_id)
            self.synced, self.flagged = self.state, False
            return sent
        return self.outbox.popleft()

    def receive(self, stamp: Stamp, base: Stamp | None, change_id: int) -> tuple[bool, bool]:
        """(applied, counted a conflict)."""
        self.clock = max(self.clock, stamp.version)
        decision = decide(stamp, base, self.state, self.seen, self.me)
        if decision.duplicate:
            return False, False
        self.seen = max(self.seen, stamp.version)
        self.conflicts += decision.conflict
        if decision.apply:
            self.state, self.state_id, self.synced, self.flagged = stamp, change_id, stamp, False
            self.adopted.add(change_id)
        return decision.apply, decision.conflict


class TwoSides(RuleBasedStateMachine):
    """Random changes on either side, publications, deliveries (FIFO per direction, with
    duplicates) — checked against an independent account of what happened: which changes
    each side had adopted when a change was made, and which replacements lost a change."""

    def __init__(self) -> None:
        super().__init__()
        self.sides = {"m": Side("monolith", merging=False), "o": Side("orders", merging=True)}
        self.wires: dict[str, deque[Message]] = {"m": deque(), "o": deque()}  # by sender
        self.made: dict[int, tuple[str, Stamp, frozenset[int]]] = {}  # id → side, stamp, knew
        self.expected_conflicts = 0
        self.heard = {"m": 0, "o": 0}  # the highest version each side has received

    def _other(self, name: str) -> str:
        return "o" if name == "m" else "m"

    @rule(side=st.sampled_from("mo"), rank=st.sampled_from([0, 0, 1, 1, 2, 3]))
    def change(self, side: str, rank: int) -> None:
        holder = self.sides[side]
        knew = frozenset(holder.adopted)
        earlier = [self.made[i][1] for i in knew]
        stamp = holder.change(rank, len(self.made) + 1)
        # a change made after others always outranks what its side had adopted, and its
        # version is above every version its side has heard of (so the other side, which
        # drops versions at or below what it has seen, never drops it)
        assert all(wins(stamp, before) for before in earlier)
        assert stamp.version > self.heard[side]
        assert all(stamp.version > s.version for who, s, _ in self.made.values() if who == side)
        self.made[len(self.made) + 1] = (side, stamp, knew)

    @rule(side=st.sampled_from("mo"))
    def publish(self, side: str) -> None:
        if self.sides[side].pending():
            self.wires[side].append(self.sides[side].publish())

    @rule(sender=st.sampled_from("mo"), again=st.booleans())
    def deliver(self, sender: str, again: bool) -> None:
        wire = self.wires[sender]
        if not wire:
            return
        message = wire[0] if again else wire.popleft()  # again: a redelivery follows
        self._receive(self._other(sender), message)

    def _receive(self, name: str, message: Message) -> None:
        holder = self.sides[name]
        stamp, _, change_id = message
        self.heard[name] = max(self.heard[name], stamp.version)
        replaced_own = holder.state is not None and holder.state.origin == holder.me
        lost_id = holder.state_id
        applied, counted = holder.receive(*message)
        if applied and replaced_own:
            # lost: the other side had never adopted this change when it made its own
            _, _, knew = self.made[change_id]
            if lost_id not in knew:
                self.expected_conflicts += 1
        assert applied or not counted

    @invariant()
    def counted_as_the_account_says(self) -> None:
        total = self.sides["m"].conflicts + self.sides["o"].conflicts
        assert total == self.expected_conflicts

    def teardown(self) -> None:
        m, o = self.sides["m"], self.sides["o"]
        for _ in range(4 * (len(self.made) + 2)):
            for name in "mo":
                while self.sides[name].pending():
                    self.wires[name].append(self.sides[name].publish())
                while self.wires[name]:
                    self._receive(self._other(name), self.wires[name].popleft())
        assert not m.pending()
        assert not o.pending()
        assert m.state == o.state  # converged
        if self.made:  # the greatest change made won
            assert m.state is not None
            assert all(m.state == s or wins(m.state, s) for _, s, _ in self.made.values())
        total = m.conflicts + o.conflicts
        assert total == self.expected_conflicts


TwoSides.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_any_history_converges_keeps_later_changes_and_counts_each_conflict_once = TwoSides.TestCase


def test_a_change_after_a_higher_ranked_remote_one_is_not_dropped_as_seen() -> None:
    """Placed on the monolith and delivered; two admin edits in transit; paid on the
    Lambda; the edits lose there; shipped on the monolith — the ship must apply."""
    m, o = Side("monolith", merging=False), Side("orders", merging=True)
    m.change(0, 1)
    o.receive(*m.publish())
    m.change(0, 2)  # admin edit
    m.change(0, 3)  # admin edit
    o.change(1, 4)  # paid on the Lambda
    o.receive(*m.publish())  # the edits arrive and lose
    o.receive(*m.publish())
    m.receive(*o.publish())  # the payment wins on the monolith
    shipped = m.change(2, 5)
    applied, _ = o.receive(*m.publish())
    assert applied
    assert o.state == m.state == shipped
    assert o.conflicts + m.conflicts == 1  # the edits lost to the payment, counted once
