"""New ids of a two-way entity from this side's own range, on every database.

Both sides create entities of a two-way pair (orders placed on the monolith and on the
orders service) and each keeps the other's under the same id, so the pair splits the id
space (routing.yaml ``sync.<stream>.two_way.ids.split``): the stream's ``from`` side
allocates below the split, its ``to`` side from the split up.

Storing the other side's entities under their own ids must not move this side's next
id — and the databases' own counters do move: SQLite's ``AUTOINCREMENT`` and MySQL's
``AUTO_INCREMENT`` jump past the highest id inserted explicitly. So this side does not
take new ids from the table's counter. ``allocate`` takes them from a counter of the
toolkit's that only it moves:

* on PostgreSQL a sequence of its own (``strangler_ids_<table>``, bounded by the range,
  created on first use and started past the ids already in the range) — ``nextval`` is
  not transactional, so concurrent inserts never wait for each other;
* elsewhere an ``IdCounter`` row, read and moved under its row lock in the inserting
  transaction (SQLite serialises writers anyway; on MySQL inserts of that model take
  turns until their transactions commit).

A ``pre_save`` handler gives every new instance of such a model its id; code that
inserts rows without signals (``bulk_create``) calls ``allocate`` itself, and code that
inserts explicit ids in this side's range (fixtures, a seed) calls ``resync`` after.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Max

from facade.sync.django import registry
from facade.sync.django.models import IdCounter

_ensured: set[tuple[str, str]] = set()


class IdsExhausted(RuntimeError):
    """This side has used every id of its range."""


def id_range(model: type[models.Model]) -> tuple[int, int] | None:
    """[low, high) of the ids this side gives new instances of ``model``, if it splits."""
    entity = registry.published().get(model)
    if entity is None or entity.two_way is None:
        return None
    return entity.two_way.id_range(registry.origin())


def _sequence(model: type[models.Model]) -> str:
    return f"strangler_ids_{model._meta.db_table}"[:63]


def _highest(model: type[models.Model], low: int, high: int) -> int | None:
    value = model._default_manager.filter(pk__gte=low, pk__lt=high).aggregate(top=Max("pk"))
    return None if value["top"] is None else int(value["top"])


def _ensure_sequence(model: type[models.Model], low: int, high: int) -> str:
    name = _sequence(model)
    key = (str(connection.settings_dict.get("NAME")), name)
    if key in _ensured:
        return name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
        cursor.execute(
            f'CREATE SEQUENCE IF NOT EXISTS "{name}" AS bigint MINVALUE %s MAXVALUE %s '
            "START WITH %s NO CYCLE",
            [low, high - 1, low],
        )
        cursor.execute(f'SELECT is_called FROM "{name}"')  # noqa: S608 - our own identifier
        (called,) = cursor.fetchone()
        if not called:  # new: start past the ids already in the range
            top = _highest(model, low, high)
            if top is not None:
                cursor.execute("SELECT setval(%s, %s, true)", [name, top])
    # creating it is transactional: it exists for good once this transaction commits
    transaction.on_commit(lambda: _ensured.add(key))
    return name


def ensure_all(**_: Any) -> None:
    """``post_migrate``: create the sequences of this side's ranges (PostgreSQL), so
    that requests find them."""
    if connection.vendor != "postgresql":
        return
    for model in registry.published():
        span = id_range(model)
        if span is not None:
            with transaction.atomic():
                _ensure_sequence(model, *span)


def allocate(model: type[models.Model]) -> int:
    """The next id of ``model`` in this side's range; raises ``IdsExhausted`` at its end."""
    span = id_range(model)
    if span is None:
        raise ValueError(f"{model._meta.label} does not split its ids with another side")
    low, high = span
    if connection.vendor == "postgresql":
        with transaction.atomic():
            name = _ensure_sequence(model, low, high)
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT nextval(%s)", [name])
                    (value,) = cursor.fetchone()
            except Exception as exc:  # the sequence reached its MAXVALUE
                if "reached maximum value" in str(exc):
                    raise IdsExhausted(_exhausted(model, high)) from exc
                raise
        return int(value)
    label = model._meta.label
    with transaction.atomic():
        row = IdCounter.objects.select_for_update().filter(label=label).first()
        if row is None:
            top = _highest(model, low, high)
            try:
                with transaction.atomic():
                    IdCounter.objects.create(label=label, next_id=low if top is None else top + 1)
            except IntegrityError:
                pass  # created meanwhile by another writer
            row = IdCounter.objects.select_for_update().get(label=label)
        value = row.next_id
        if value >= high:
            raise IdsExhausted(_exhausted(model, high))
        IdCounter.objects.filter(pk=row.pk).update(next_id=value + 1)
    return int(value)


def _exhausted(model: type[models.Model], high: int) -> str:
    return (
        f"{model._meta.label}: every id below {high:,} is used; raise the pair's ids.split "
        "in routing.yaml on both sides"
    )


def resync(model: type[models.Model]) -> None:
    """Move the counter past the highest id in this side's range (after inserting rows
    with explicit ids)."""
    span = id_range(model)
    if span is None:
        return
    low, high = span
    top = _highest(model, low, high)
    if top is None:
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            name = _ensure_sequence(model, low, high)
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT last_value, is_called FROM "{name}"')  # noqa: S608
                last, called = cursor.fetchone()
                if not called or int(last) < top:
                    cursor.execute("SELECT setval(%s, %s, true)", [name, top])
        return
    with transaction.atomic():
        label = model._meta.label
        IdCounter.objects.get_or_create(label=label, defaults={"next_id": top + 1})
        IdCounter.objects.filter(label=label, next_id__lte=top).update(next_id=top + 1)


def advance_past(model: type[models.Model], value: int) -> None:
    """Make sure this side's next id of ``model`` is above ``value`` (a row written with
    an explicit id of this side's range)."""
    span = id_range(model)
    if span is None or not span[0] <= value < span[1]:
        return
    low, high = span
    if connection.vendor == "postgresql":
        with transaction.atomic():
            name = _ensure_sequence(model, low, high)
            with connection.cursor() as cursor:
                cursor.execute(
                    f'SELECT setval(%s, greatest(%s, (SELECT last_value FROM "{name}")), true)',  # noqa: S608
                    [name, value],
                )
        return
    with transaction.atomic():
        label = model._meta.label
        IdCounter.objects.get_or_create(label=label, defaults={"next_id": value + 1})
        IdCounter.objects.filter(label=label, next_id__lte=value).update(next_id=value + 1)


def assign(sender: type[models.Model], instance: models.Model, raw: bool = False, **_: Any) -> None:
    """``pre_save``: a new instance of a model with a range of its own gets its id; a
    row loaded with its id (``loaddata``) moves the counter past it."""
    if id_range(sender) is None:
        return
    if instance.pk is not None:
        if (raw or instance._state.adding) and isinstance(instance.pk, int):
            advance_past(sender, instance.pk)  # not on updates: they took their id before
        return
    instance.pk = allocate(sender)


def forget() -> None:
    """Forget which sequences exist (tests that drop databases)."""
    _ensured.clear()
