"""Entities both sides write during a canary, and the rule that settles concurrent changes.

While a route is split, one order can be changed by the monolith and by the extracted
service. Every change of such a **two-way** entity carries a ``Stamp``:

``rank``     the entity's stage in its **lifecycle**, declared once per pair of streams
             in routing.yaml (``sync.<stream>.lifecycle``: a field and the order of its
             values, e.g. ``status: placed < paid < shipped < cancelled``); 0 without one.
``version``  a **Lamport clock** per entity. Each side keeps ``clock``, the highest
             version it has made, held or received (even from a change that lost); a
             change made here takes ``clock + 1``. So a change is always newer than
             every change its side had heard of when it was made.
``origin``   the side that made it.

**The greatest stamp wins, on both sides**: compared by rank, then version, then origin
(at a tie the origin whose name sorts first: ``monolith`` before ``orders-lambda``).

Why that converges and never loses a change made later: a change made here never
moves its entity backwards through the lifecycle (``local_change`` refuses it), and its
version is above everything heard of, so **its stamp is greater than the stamp of every
state it was made on or after**. The order of stamps therefore agrees with the order in
which changes followed each other; only *concurrent* changes — made on two sides without
knowing of each other — are ordered by the rule alone (the later stage first: a
cancellation beats a concurrent payment, so the stock it gave back is never sold
twice). Each side keeps the greatest stamp it has seen — a maximum, which does not
depend on the order, repetition or delay of deliveries — and publishes its own
changes, so once every change is delivered both hold the same greatest one.

A change also names its ``base``: the stamp of the state it was made on, as far as the
other side knows it. An incoming change whose base is not this side's current state,
while that state is this side's own change, was made without knowing it: the two are
**concurrent**. **The side whose own change lost records the conflict**, with both
states, so a person can review what the rule discarded. The winning change always
reaches the losing side (it stays the winner's newest state or is overtaken by a newer
one of the same side, which is published), while the losing one may never reach the
winner (the order store sends only its newest state): counting at the loser counts
each conflict exactly once, whichever side hears first.

``seen`` is the highest version a side has received from the other: since each side's
own versions only grow, a redelivery or an overtaken change (at or below it) changes
nothing and is not counted again.

This module is part of the toolkit's runtime: it imports only the standard library, so
an extracted service (a Lambda function) runs the same rule as the monolith.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SIDE_ENV",
    "TWO_WAY_ENV",
    "Backwards",
    "Decision",
    "Lifecycle",
    "Stamp",
    "TwoWay",
    "decide",
    "local_change",
    "two_way_env",
    "two_way_from_environment",
    "wins",
]

# routing.yaml's two-way pairs, as JSON, for sides that do not read routing.yaml (a
# Lambda function): rendered into their environment by `strangler up` and `render sam`.
TWO_WAY_ENV = "STRANGLER_SYNC_TWO_WAY"
SIDE_ENV = "STRANGLER_SYNC_SIDE"  # such a side's backend name: the origin of its changes


@dataclass(frozen=True)
class Stamp:
    rank: int
    version: int
    origin: str

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "version": self.version, "origin": self.origin}

    @classmethod
    def from_dict(cls, raw: Any) -> Stamp | None:
        """A stamp from a message or a stored row; None for null. Raises ValueError."""
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise ValueError(f"a stamp is an object, got {type(raw).__name__}")
        try:
            return cls(int(raw.get("rank", 0)), int(raw["version"]), str(raw["origin"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"stamp {raw!r}: {exc!r}") from exc


def wins(a: Stamp, b: Stamp) -> bool:
    """True when state ``a`` beats state ``b`` (and never both ways)."""
    if (a.rank, a.version) != (b.rank, b.version):
        return (a.rank, a.version) > (b.rank, b.version)
    return a.origin < b.origin


@dataclass(frozen=True)
class Decision:
    duplicate: bool  # received before (or overtaken): nothing to do, nothing to count
    apply: bool  # the incoming state replaces the current one
    conflict: bool  # it replaces a change of this side's made concurrently: count it here


def decide(
    incoming: Stamp, base: Stamp | None, current: Stamp | None, seen: int, me: str
) -> Decision:
    """What a side (origin ``me``) does with an incoming change of one entity. Whatever it
    decides, the side's clock moves up to ``incoming.version``."""
    if incoming.version <= seen or incoming == current:
        return Decision(duplicate=True, apply=False, conflict=False)
    apply = current is None or wins(incoming, current)
    concurrent = current is not None and current.origin == me and base != current
    return Decision(duplicate=False, apply=apply, conflict=apply and concurrent)


class Backwards(ValueError):
    """A local change that would move a two-way entity back through its lifecycle."""


def local_change(current: Stamp | None, clock: int, rank: int, me: str) -> Stamp:
    """The stamp of a change made here on ``current``, with the entity's ``clock`` (the
    highest version made, held or received here); raises ``Backwards`` when ``rank`` is
    below the current state's."""
    if current is not None and rank < current.rank:
        raise Backwards(f"rank {rank} is below the current state's {current.rank}")
    return Stamp(rank, max(clock, current.version if current else 0) + 1, me)


@dataclass(frozen=True)
class Lifecycle:
    """The stages of a two-way entity, in order: a state's rank is its stage's index."""

    field: str
    order: tuple[str, ...]

    def rank(self, state: Mapping[str, Any]) -> int:
        value = state.get(self.field)
        try:
            return self.order.index(str(value))
        except ValueError:
            raise ValueError(
                f"{self.field}={value!r} is not a stage of the lifecycle ({' < '.join(self.order)})"
            ) from None

    def describe(self, rank: int) -> str:
        return self.order[rank] if 0 <= rank < len(self.order) else str(rank)

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "order": list(self.order)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Lifecycle:
        order: Sequence[Any] = raw["order"]
        return cls(str(raw["field"]), tuple(str(value) for value in order))


@dataclass(frozen=True)
class TwoWay:
    """A pair of streams that carry one kind of entity both ways (routing.yaml
    ``sync.<stream>.two_way``): its lifecycle, and how the two sides split new ids."""

    streams: tuple[str, str]  # (declared on, its reverse)
    sides: tuple[str, str]  # (the declaring stream's from, its to)
    lifecycle: Lifecycle | None = None
    id_split: int | None = None  # sides[0] allocates below it, sides[1] from it up

    def rank(self, state: Mapping[str, Any]) -> int:
        return self.lifecycle.rank(state) if self.lifecycle else 0

    def id_range(self, side: str) -> tuple[int, int] | None:
        """[low, high) of the ids ``side`` allocates, if the pair splits them."""
        if self.id_split is None:
            return None
        if side == self.sides[0]:
            return 1, self.id_split
        if side == self.sides[1]:
            return self.id_split, 2**63
        raise ValueError(f"{side!r} is not a side of {' / '.join(self.streams)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": list(self.streams),
            "sides": list(self.sides),
            "lifecycle": self.lifecycle.as_dict() if self.lifecycle else None,
            "id_split": self.id_split,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TwoWay:
        first, second = raw["streams"]
        source, target = raw["sides"]
        lifecycle = raw.get("lifecycle")
        split = raw.get("id_split")
        return cls(
            (str(first), str(second)),
            (str(source), str(target)),
            Lifecycle.from_dict(lifecycle) if lifecycle else None,
            None if split is None else int(split),
        )


def two_way_env(pairs: Sequence[TwoWay]) -> str:
    """The value of ``TWO_WAY_ENV`` for these pairs."""
    return json.dumps([pair.as_dict() for pair in pairs], separators=(",", ":"))


def two_way_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, TwoWay]:
    """The pairs ``TWO_WAY_ENV`` declares, by each of their streams' names (empty when
    unset); raises ValueError for a value that is not what ``two_way_env`` writes."""
    text = (os.environ if environ is None else environ).get(TWO_WAY_ENV, "")
    if not text.strip():
        return {}
    try:
        pairs = [TwoWay.from_dict(raw) for raw in json.loads(text)]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{TWO_WAY_ENV} is not what `strangler` renders: {exc!r}") from exc
    return {stream: pair for pair in pairs for stream in pair.streams}
