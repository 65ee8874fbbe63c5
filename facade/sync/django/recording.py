"""Writing outbox rows in the changing transaction.

``save()`` and ``delete()`` of published models are recorded through Django's signals,
and so are those of a model that is part of a published entity (``parts``: saving an
order line records its order). Queryset ``update()`` and ``bulk_create()`` send no
signals: code that uses them on a published model calls ``record_ids(Model, ids)`` in
the same transaction. A change made
outside any transaction is still recorded, but in a transaction of its own — a crash
between the two would lose its event (``sync verify`` finds such drift); the monolith's
views run in transactions (``ATOMIC_REQUESTS``) so this does not happen there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from facade.sync.django import registry, stamps
from facade.sync.django.ids import assign, id_range
from facade.sync.django.models import EventKind, OutboxEvent
from facade.sync.django.registry import Published, origin

log = logging.getLogger(__name__)


def _event(registration: Published, pk: Any, kind: str, payload: Any) -> OutboxEvent:
    return OutboxEvent(
        stream=registration.stream,
        aggregate=registration.label,
        aggregate_id=str(pk),
        kind=kind,
        payload=payload,
        origin=origin(),
    )


def _stamped(registration: Published, events: list[OutboxEvent]) -> list[OutboxEvent]:
    """Give the events of a two-way entity their version stamps (one per entity and
    change, under the entity's version row lock)."""
    pair = registration.two_way
    if pair is None:
        return events
    rows = stamps.lock(registration.label, [e.aggregate_id for e in events])
    describe = pair.lifecycle.describe if pair.lifecycle else str
    for event in events:
        row = rows[event.aggregate_id]
        rank = registration.rank(event.payload) if event.payload is not None else row.rank
        event.stamp = stamps.bump(row, rank, origin(), describe)
    stamps.save(rows.values())
    return events


def _own_transaction(label: str) -> AbstractContextManager[Any]:
    """Inside the caller's transaction, nothing; outside one (autocommit), a transaction
    of the event's own — written after the change it records, so not atomic with it."""
    if connection.in_atomic_block:
        return nullcontext()
    log.warning("%s changed outside a transaction: its outbox event is not atomic", label)
    return transaction.atomic()


_suppressed: ContextVar[frozenset[str] | None] = ContextVar("outbox_suppressed", default=None)
ALL = "*"


@contextmanager
def suppressed(*labels: str) -> Iterator[None]:
    """Record no change of these models (``"orders.Order"``; none named: of any model)
    inside the block: an entity applied from another service's event is not published
    back to it (no echo), while what the applying causes elsewhere — stock given back
    by an applied cancellation — still is."""
    token = _suppressed.set(frozenset(labels or (ALL,)) | (_suppressed.get() or frozenset()))
    try:
        yield
    finally:
        _suppressed.reset(token)


def _is_suppressed(label: str) -> bool:
    current = _suppressed.get()
    return current is not None and (ALL in current or label in current)


def record(instance: models.Model, *, deleted: bool = False) -> None:
    registration = registry.published().get(type(instance))
    if registration is None:
        part = registry.parts().get(type(instance))
        if part is not None:  # a part changed: the entity it belongs to changed
            entity, key = part
            parent = getattr(instance, key if key.endswith("_id") else f"{key}_id", None)
            if parent is not None:
                record_ids(entity.model, [parent])
        return
    if _is_suppressed(registration.label):
        return
    with _own_transaction(registration.label):
        if deleted:
            event = _event(registration, instance.pk, EventKind.DELETE, None)
        else:
            event = _event(
                registration, instance.pk, EventKind.UPSERT, registration.serialize(instance)
            )
        _stamped(registration, [event])[0].save()


def record_ids(model: type[models.Model], ids: Iterable[Any]) -> None:
    """Record the current state of these rows (after a queryset update); a row that is
    gone is recorded as deleted, unless the other side writes that model too."""
    registration = registry.published().get(model)
    if registration is None or _is_suppressed(registration.label):
        return
    wanted = sorted(set(ids))
    if not wanted:
        return
    with _own_transaction(registration.label):
        rows = model._default_manager.in_bulk(wanted)
        # a two-way entity missing here may not have arrived yet: it is not a deletion
        events = [
            _event(registration, pk, EventKind.UPSERT, registration.serialize(rows[pk]))
            if pk in rows
            else _event(registration, pk, EventKind.DELETE, None)
            for pk in wanted
            if pk in rows or registration.two_way is None
        ]
        OutboxEvent.objects.bulk_create(_stamped(registration, events))


def _saved(sender: type[models.Model], instance: models.Model, raw: bool, **_: Any) -> None:
    if not raw:  # fixtures load raw rows: not changes of the shop
        record(instance)


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    record(instance, deleted=True)


class TwoWayDeletion(Exception):
    """A two-way entity deleted here: the other side would keep it for good."""


def _refuse_deletion(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    """``pre_delete`` of a two-way entity: refused (before anything is deleted), unless
    the deletion is applied from the other side."""
    registration = registry.published().get(sender)
    if registration is None or registration.two_way is None:
        return
    if _is_suppressed(registration.label):
        return
    raise TwoWayDeletion(
        f"{registration.label} {instance.pk} is changed on both sides of the pair "
        f"{' / '.join(registration.two_way.streams)}: deleting it here would leave it on "
        "the other side for good; move it to a final stage of its lifecycle instead"
    )


def connect() -> None:
    for model in [*registry.published(), *registry.parts()]:
        label = model._meta.label
        post_save.connect(_saved, sender=model, dispatch_uid=f"outbox-save-{label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"outbox-delete-{label}")
        pre_delete.connect(_refuse_deletion, sender=model, dispatch_uid=f"two-way-{label}")
    for model in registry.published():
        if id_range(model) is not None:
            pre_save.connect(assign, sender=model, dispatch_uid=f"ids-{model._meta.label}")
