"""Writing outbox rows in the changing transaction.

``save()`` and ``delete()`` of registered models are recorded through Django's signals.
Queryset ``update()`` and ``bulk_create()`` send no signals: code that uses them on a
registered model calls ``record_ids(Model, ids)`` in the same transaction. A change made
outside any transaction is still recorded, but in a transaction of its own — a crash
between the two would lose its event (``sync verify`` finds such drift); the monolith's
views run in transactions (``ATOMIC_REQUESTS``) so this does not happen there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection, models
from django.db.models.signals import post_delete, post_save

from monolith.outbox.models import EventKind, OutboxEvent
from monolith.outbox.registry import Registration, origin, registrations

log = logging.getLogger(__name__)


def _event(registration: Registration, pk: Any, kind: str, payload: Any) -> OutboxEvent:
    return OutboxEvent(
        stream=registration.stream,
        aggregate=registration.label,
        aggregate_id=str(pk),
        kind=kind,
        payload=payload,
        origin=origin(),
    )


def _warn_outside_transaction(label: str) -> None:
    if not connection.in_atomic_block:
        log.warning("%s changed outside a transaction: its outbox event is not atomic", label)


_suppressed: ContextVar[bool] = ContextVar("outbox_suppressed", default=False)


@contextmanager
def suppressed() -> Iterator[None]:
    """Record nothing inside the block: changes applied from another service's events are
    not published back to it (no echo)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def record(instance: models.Model, *, deleted: bool = False) -> None:
    registration = registrations().get(type(instance))
    if registration is None or _suppressed.get():
        return
    _warn_outside_transaction(registration.label)
    if deleted:
        _event(registration, instance.pk, EventKind.DELETE, None).save()
    else:
        payload = registration.serialize(instance)
        _event(registration, instance.pk, EventKind.UPSERT, payload).save()


def record_ids(model: type[models.Model], ids: Iterable[Any]) -> None:
    """Record the current state of these rows (after a queryset update)."""
    registration = registrations().get(model)
    if registration is None or _suppressed.get():
        return
    wanted = sorted(set(ids))
    if not wanted:
        return
    _warn_outside_transaction(registration.label)
    rows = model._default_manager.in_bulk(wanted)
    events = [
        _event(registration, pk, EventKind.UPSERT, registration.serialize(rows[pk]))
        if pk in rows
        else _event(registration, pk, EventKind.DELETE, None)
        for pk in wanted
    ]
    OutboxEvent.objects.bulk_create(events)


def _saved(sender: type[models.Model], instance: models.Model, raw: bool, **_: Any) -> None:
    if not raw:  # fixtures load raw rows: not changes of the shop
        record(instance)


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    record(instance, deleted=True)


def connect() -> None:
    for model in registrations():
        post_save.connect(_saved, sender=model, dispatch_uid=f"outbox-save-{model._meta.label}")
        post_delete.connect(
            _deleted, sender=model, dispatch_uid=f"outbox-delete-{model._meta.label}"
        )
