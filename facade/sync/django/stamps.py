"""Version stamps of two-way entities on this side (the rule is
``facade.sync.conflict``).

``lock`` takes entities' ``EntityVersion`` rows under a row lock (creating the missing
ones), so a local change and an applied event of one entity take turns; ``bump`` stamps
a local change: the next version of the entity's clock, made here, on the state held
before as its base — and refuses one that moves the entity back through its lifecycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.utils import timezone

from facade.sync.conflict import Backwards, Stamp, local_change
from facade.sync.django.models import EntityVersion


class BackwardsChange(Backwards):
    """A change of a two-way entity here that moves it back through its lifecycle: the
    other side would keep the later stage, and the two would drift apart."""


def current(row: EntityVersion) -> Stamp | None:
    return Stamp(row.rank, row.version, row.origin) if row.version else None


def lock(label: str, object_ids: Iterable[str]) -> dict[str, EntityVersion]:
    """The entities' rows, locked until the transaction ends; missing ones are created at
    version 0 (nothing held yet)."""
    wanted = sorted(set(object_ids))
    EntityVersion.objects.bulk_create(
        [EntityVersion(aggregate=label, object_id=i, version=0, origin="") for i in wanted],
        ignore_conflicts=True,
    )
    rows = EntityVersion.objects.filter(aggregate=label, object_id__in=wanted).order_by("id")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update()
    return {row.object_id: row for row in rows}


def bump(row: EntityVersion, rank: int, origin: str, describe: Any = str) -> dict[str, Any]:
    """Stamp a local change of the entity (the row is saved by the caller); return the
    event's stamp with its base. ``describe`` names a rank in the error."""
    base = current(row)
    try:
        stamp = local_change(base, row.clock, rank, origin)
    except Backwards:
        assert base is not None
        raise BackwardsChange(
            f"{row.aggregate} {row.object_id}: a change here from {describe(base.rank)} to "
            f"{describe(rank)} moves it back through its lifecycle; two-way entities only "
            "move forward (the other side would keep the later stage)"
        ) from None
    row.rank, row.version, row.origin = stamp.rank, stamp.version, stamp.origin
    row.clock = max(row.clock, stamp.version)
    row.updated_at = timezone.now()
    return {**stamp.as_dict(), "base": base.as_dict() if base else None}


def save(rows: Iterable[EntityVersion]) -> None:
    EntityVersion.objects.bulk_update(
        list(rows), ["rank", "version", "origin", "seen", "clock", "stream", "updated_at"]
    )
