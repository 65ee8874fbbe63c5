"""Entities both sides write during a canary, and the rule that settles concurrent changes.

While a route is split, one order can be changed by the monolith and by the extracted
service. Every change of such a two-way entity carries a ``Stamp``:

``version``  a per-entity counter. A side's own change takes the highest version it
             holds plus one, whether that version was its own or applied from the other
             side (a Lamport clock per entity), so a change always outranks the state it
             was made on.
``rank``     the domain's precedence of the new state, 0 where the entity has none. The
             orders' rank is the lifecycle stage (placed 0, paid 1, shipped 2,
             cancelled 3): a cancellation is final and wins over a concurrent payment,
             so the stock it gave back is never sold twice.
``origin``   the side that made it.

**The greatest stamp wins, on both sides**: compared by rank, then version, then origin
— at a tie the origin whose name sorts first wins (``monolith`` before
``orders-lambda``: the system of record). Each side keeps the state with the greatest
stamp it has seen, so both end in the same state whatever order the events arrive in.

A change also names its ``base``: the stamp of the state it was made on, as far as the
other side knows it. An incoming change whose base is not this side's current state,
while that state is this side's own change, was made without knowing it: the two are
**concurrent**, a conflict. **The side whose own change lost counts it**, and records
both states, so a person can review what the rule discarded. The winning change always
reaches the losing side (it stays that side's newest state, so it is published), while
the losing one may never reach the winner (the order store sends only its newest state):
counting at the loser counts each conflict exactly once, whichever side hears first.

``seen`` is the highest version a side has received from the other: a redelivery or an
overtaken change (at or below it) changes nothing and is not counted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Decision", "Stamp", "decide", "wins"]


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
    """What a side (origin ``me``) does with an incoming change of one entity."""
    if incoming.version <= seen or incoming == current:
        return Decision(duplicate=True, apply=False, conflict=False)
    apply = current is None or wins(incoming, current)
    concurrent = current is not None and current.origin == me and base != current
    return Decision(duplicate=False, apply=apply, conflict=apply and concurrent)
