"""Compare the catalog service's copy with the monolith's tables, row by row, in chunks.

For each entity both sides are read in primary-key order, a chunk at a time (keyset
pagination: memory stays bounded whatever the table size); each row becomes a digest of
its normalised columns, and the ids whose digests differ, or that exist on one side only,
are the drift. Values are normalised so that the same data compares equal across
database engines (decimals by value, datetimes in UTC).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models

from monolith.catalog.models import Category, Product, StockLevel

ENTITIES: dict[str, type[models.Model]] = {
    "catalog.Category": Category,
    "catalog.Product": Product,
    "catalog.StockLevel": StockLevel,
}


@dataclass
class Report:
    label: str
    source_rows: int = 0
    target_rows: int = 0
    chunks: int = 0
    drifted: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "chunks": self.chunks,
            "drifted": [str(i) for i in self.drifted],
        }


def _normal(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    return repr(value)


def _digests(
    model: type[models.Model], alias: str, after: Any, upto: Any | None, limit: int | None
) -> list[tuple[Any, str]]:
    """(pk, digest) of the rows in (after, upto], at most ``limit`` of them, by pk."""
    pk = model._meta.pk
    assert pk is not None
    columns = [pk.attname] + [
        f.attname for f in model._meta.concrete_fields if f.attname != pk.attname
    ]
    rows = model._default_manager.using(alias).order_by("pk")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    if upto is not None:
        rows = rows.filter(pk__lte=upto)
    if limit is not None:
        rows = rows[:limit]
    return [
        (values[0], hashlib.sha256("\x1f".join(_normal(v) for v in values).encode()).hexdigest())
        for values in rows.values_list(*columns)
    ]


def compare(label: str, source: str, target: str = "default", chunk: int = 5000) -> Report:
    model = ENTITIES[label]
    report = Report(label)
    after: Any = None
    while True:
        theirs = _digests(model, source, after, None, chunk)
        upto = theirs[-1][0] if theirs else None
        ours = _digests(model, target, after, upto, None)
        report.chunks += 1
        report.source_rows += len(theirs)
        report.target_rows += len(ours)
        mine = dict(ours)
        for pk, digest in theirs:
            if mine.pop(pk, None) != digest:
                report.drifted.append(pk)
        report.drifted.extend(mine)  # rows only the copy has
        if upto is None:
            break
        after = upto
    report.drifted.sort()
    return report


def entities(only: str | None = None) -> Iterator[str]:
    if only is not None and only not in ENTITIES:
        raise KeyError(f"{only!r}: one of {', '.join(ENTITIES)}")
    yield from ([only] if only else ENTITIES)
