"""Version stamps of two-way entities on the monolith's side (the rule is
``facade.sync.versions``).

``lock`` takes an entity's ``EntityVersion`` rows under a row lock (creating the missing
ones), so a local change and an applied event of one entity take turns; ``bump`` stamps
a local change: the version held plus one, made here, on the state held before as its
base.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.utils import timezone

from facade.sync.versions import Stamp
from monolith.outbox.models import EntityVersion


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


def bump(row: EntityVersion, rank: int, origin: str) -> dict[str, Any]:
    """Stamp a local change of the entity (the row is saved by the caller); return the
    event's stamp with its base."""
    base = current(row)
    row.rank, row.version, row.origin = rank, row.version + 1, origin
    row.updated_at = timezone.now()
    return {
        **Stamp(row.rank, row.version, row.origin).as_dict(),
        "base": base.as_dict() if base else None,
    }


def save(rows: Iterable[EntityVersion]) -> None:
    EntityVersion.objects.bulk_update(
        list(rows), ["rank", "version", "origin", "seen", "stream", "updated_at"]
    )
