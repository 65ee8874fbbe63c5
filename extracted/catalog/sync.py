"""Applying the monolith's catalog events to the catalog service's database.

Each message carries one entity's full state (or its deletion) and a version (the
monolith's outbox id). ``apply`` writes it in one transaction with the entity's
``SyncState``, and only if the version is newer than the one applied: a duplicate, a
redelivery after a visibility timeout, or an event overtaken by a newer one changes
nothing. The worker (``manage.py sync_consumer``) runs ``facade.sync.consumer.Consumer``
with ``apply``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction
from django.utils.timezone import now

from extracted.catalog.models import SyncState
from facade.sync.consumer import Rejected

log = logging.getLogger(__name__)
APPLIES_TO = frozenset({"catalog.Category", "catalog.Product", "catalog.StockLevel"})


def _model(label: str) -> type[models.Model]:
    if label not in APPLIES_TO:
        raise Rejected(f"unknown aggregate {label!r}")
    return apps.get_model(label)


def _row(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    columns = {f.attname for f in model._meta.concrete_fields}
    return {k: v for k, v in data.items() if k in columns}


def apply(body: dict[str, Any]) -> bool:
    """Apply one event; False when it was already applied or is older than the state."""
    try:
        label, object_id, version = body["aggregate"], str(body["id"]), int(body["version"])
        kind, data = body["kind"], body.get("data")
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(f"malformed event: {exc!r}") from exc
    model = _model(label)
    if kind not in ("upsert", "delete") or (kind == "upsert" and not isinstance(data, dict)):
        raise Rejected(f"event kind {kind!r} with data {type(data).__name__}")
    with transaction.atomic():
        state = (
            SyncState._default_manager.select_for_update()
            .filter(aggregate=label, object_id=object_id)
            .first()
        )
        if state is not None and state.version >= version:
            return False
        pk = model._meta.pk
        assert pk is not None
        rows = model._default_manager.filter(pk=object_id)
        if kind == "delete":
            rows.delete()
        else:
            assert isinstance(data, dict)
            row = _row(model, data)
            row.pop(pk.attname, None)
            if not rows.update(**row):  # one UPDATE, an INSERT only for a new entity
                model._default_manager.create(pk=object_id, **row)
        if state is None:
            SyncState._default_manager.create(
                aggregate=label, object_id=object_id, version=version, deleted=kind == "delete"
            )
        else:
            state.version, state.deleted, state.applied_at = version, kind == "delete", now()
            state.save(update_fields=["version", "deleted", "applied_at"])
        # foreign keys are checked at commit by default; check them now, so that an
        # entity whose parent has not arrived fails alone, inside its savepoint
        connection.check_constraints(table_names=[model._meta.db_table])
    return True
