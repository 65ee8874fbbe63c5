"""Ready-made appliers for ``STRANGLER_SYNC["apply"]``.

``replace_row`` keeps a copy of the publishing side's rows: an upsert writes the columns
it carries (those the model has), a delete removes the row. ``replace_rows`` does the
same for many changes of one model in a few statements (the inbox uses it for a batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.db import models

from facade.sync.messages import Change


def _columns(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    pk = model._meta.pk
    assert pk is not None
    names = {f.attname for f in model._meta.concrete_fields} - {pk.attname}
    return {k: v for k, v in data.items() if k in names}


def _model(label: str) -> type[models.Model]:
    return apps.get_model(label)


def replace_row(label: str, object_id: str, kind: str, data: dict[str, Any] | None) -> None:
    model = _model(label)
    pk = model._meta.pk
    assert pk is not None
    key = pk.to_python(object_id)
    rows = model._default_manager.filter(pk=key)
    if kind == "delete" or data is None:
        rows.delete()
        return
    values = _columns(model, data)
    if not rows.update(**values):  # one UPDATE, an INSERT only for a new entity
        model._default_manager.create(pk=key, **values)


def replace_rows(label: str, changes: Sequence[Change]) -> None:
    """Apply the newest change of each entity of one model (one change per entity)."""
    model = _model(label)
    pk = model._meta.pk
    assert pk is not None
    manager = model._default_manager
    deletes = [pk.to_python(c.id) for c in changes if c.kind == "delete"]
    upserts = {pk.to_python(c.id): c.data or {} for c in changes if c.kind == "upsert"}
    if deletes:
        manager.filter(pk__in=deletes).delete()
    if not upserts:
        return
    # one INSERT … ON CONFLICT DO UPDATE per shape of data (PostgreSQL, SQLite, MySQL)
    by_fields: dict[frozenset[str], list[models.Model]] = {}
    for key, data in upserts.items():
        values = _columns(model, data)
        by_fields.setdefault(frozenset(values), []).append(model(pk=key, **values))
    for names, instances in by_fields.items():
        if names:
            manager.bulk_create(
                instances, update_conflicts=True, unique_fields=[pk.name],
                update_fields=sorted(names),
            )  # fmt: skip
        else:
            manager.bulk_create(instances, ignore_conflicts=True)
