"""Applying other services' changes to this side's database, each at most once.

``apply_batch`` takes the changes of one receive (up to 10 messages) and returns, per
change, True (applied), False (nothing to do: a duplicate, an overtaken change, or a
concurrent change that lost) or the exception that kept it from applying — that message
alone is retried, and after the queue's ``max_receives`` moves to its DLQ.

**Copies** (one-way streams: the catalog service's copy of the monolith's catalog) are
applied a batch at a time, in one transaction: the newest change per entity, compared
with ``AppliedVersion`` in one query, written with a few bulk statements, the versions
upserted at once — a batch costs one commit, not ten. A batch that fails (an entity
whose parent has not arrived yet) is applied again one change per transaction, so the
one to blame fails alone.

**Two-way entities** are applied **one change per transaction**: the monolith's own
requests lock the same rows (an order, its version row, the stock it gives back), and
a transaction that held one change's locks while waiting for the next change's would
take them in an order the requests do not — a deadlock. Each change locks, in the
order every writer of the entity uses, the entity's row, then its ``EntityVersion``,
then what the applier touches; a transaction the database still picks as a deadlock
victim (or SQLite finds locked) is rolled back and run again, as PostgreSQL's manual
advises. Inside, ``facade.sync.conflict.decide`` judges the change against the state
held here: a redelivery or an overtaken change does nothing, the greater stamp wins, a
change of this side's that loses to a concurrent one is recorded in ``SyncConflict``
with both states; the applier runs with the outbox suppressed, so a change that came
from another service is never published back to it (no echo).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from facade.sync.conflict import decide
from facade.sync.consumer import Rejected
from facade.sync.django import recording, registry, stamps
from facade.sync.django.appliers import replace_rows
from facade.sync.django.models import AppliedVersion, SyncConflict
from facade.sync.django.registry import Applied
from facade.sync.messages import Change

log = logging.getLogger(__name__)
T = TypeVar("T")
Outcome = bool | BaseException
# PostgreSQL's deadlock_detected and serialization_failure: run the transaction again
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5


def retryable(exc: BaseException) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def unavailable(exc: BaseException) -> bool:
    """The database itself is away (a restart, a failover, a lost connection, a
    statement it cancelled): no message is to blame, so the whole receive waits
    (``apply_batch`` raises, the worker backs off). A message that makes the database
    fail every time still reaches the DLQ: SQS counts each receive."""
    if isinstance(exc, InterfaceError):
        return True
    return isinstance(exc, OperationalError) and not retryable(exc)


def ready() -> None:
    """Raise while the database cannot be reached (the consumer then receives nothing
    and backs off); a connection lost earlier is replaced."""
    if connection.in_atomic_block:
        return
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def in_transaction(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run ``work`` in a transaction of its own, again when the database rolled it back
    to break a deadlock; inside a caller's transaction, in a savepoint of it (the caller
    decides what a failure means)."""
    if connection.in_atomic_block:
        with transaction.atomic():
            return work()
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return work()
        except OperationalError as exc:
            if not retryable(exc) or attempt == attempts - 1:
                raise
            log.info("inbox: transaction rolled back (%s); running it again", exc)
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311 - jitter
    raise AssertionError("unreachable")


def _applier(change: Change) -> Applied:
    found = registry.applied().get(change.aggregate)
    if found is None:
        known = ", ".join(sorted(registry.applied())) or "none"
        raise Rejected(f"no applier for {change.aggregate!r} (STRANGLER_SYNC['apply']: {known})")
    if found.two_way is not None and not change.two_way:
        raise Rejected(f"{change.entity}: a two-way entity's change without a version stamp")
    return found


def apply(body: Any) -> bool:
    """Apply one change (a message body, parsed or not) in its own transaction."""
    change = body if isinstance(body, Change) else _decode(body)
    outcome = apply_batch([change])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _decode(body: Any) -> Change:
    from facade.sync.messages import Malformed, decode

    try:
        return decode(body)
    except Malformed as exc:
        raise Rejected(str(exc)) from exc


def apply_batch(
    changes: Sequence[Change], after_each: Callable[[Change], None] | None = None
) -> list[Outcome]:
    """Apply one receive's changes; an outcome per change, in order (see the module
    docstring). ``after_each`` is called once a two-way change's transaction ended."""
    if not connection.in_atomic_block:
        close_old_connections()  # a connection lost in the last receive is replaced
    outcomes: list[Outcome | None] = [None] * len(changes)
    copies: list[int] = []
    for index, change in enumerate(changes):
        try:
            applied = _applier(change)
        except Rejected as exc:
            outcomes[index] = exc
            continue
        if applied.two_way is None:
            copies.append(index)
            continue
        try:
            outcomes[index] = in_transaction(lambda c=change, a=applied: _two_way(c, a))  # type: ignore[misc]
        except Exception as exc:
            if unavailable(exc):
                raise
            outcomes[index] = exc
        if after_each is not None:
            after_each(change)
    if copies:
        batch = [changes[i] for i in copies]
        try:
            results = in_transaction(lambda: _copies(batch))
        except Exception as exc:
            if unavailable(exc):
                raise
            log.info("inbox: a batch of %d failed (%r); one change at a time", len(batch), exc)
            results = []
            for change in batch:
                try:
                    results.append(in_transaction(lambda c=change: _copies([c])[0]))  # type: ignore[misc]
                except Exception as single:
                    if unavailable(single):
                        raise
                    results.append(single)
        for index, result in zip(copies, results, strict=True):
            outcomes[index] = result
    return [o if o is not None else False for o in outcomes]


# -- copies ----------------------------------------------------------------------------


def _copies(changes: Sequence[Change]) -> list[Outcome]:
    """Apply one-way changes in the caller's transaction; raises if any fails."""
    outcomes: list[Outcome] = [False] * len(changes)
    newest: dict[tuple[str, str], int] = {}
    for index, change in enumerate(changes):
        key = (change.aggregate, change.id)
        if key not in newest or changes[newest[key]].version < change.version:
            newest[key] = index
    held = AppliedVersion.objects.filter(
        aggregate__in={k[0] for k in newest}, object_id__in={k[1] for k in newest}
    )
    if connection.vendor == "postgresql":
        held = held.select_for_update()
    versions = {(r.aggregate, r.object_id): r.version for r in held}
    fresh = [i for key, i in newest.items() if changes[i].version > versions.get(key, -1)]
    by_label: dict[str, list[Change]] = {}
    for index in fresh:
        by_label.setdefault(changes[index].aggregate, []).append(changes[index])
    tables = []
    for label, group in by_label.items():
        applied = registry.applied()[label]
        tables.append(applied.model._meta.db_table)
        if applied.copies:
            replace_rows(label, group)
        else:
            for change in group:
                applied.apply(change.id, change.kind, change.data)
    now = timezone.now()
    AppliedVersion.objects.bulk_create(
        [
            AppliedVersion(
                stream=changes[i].stream,
                aggregate=changes[i].aggregate,
                object_id=changes[i].id,
                version=changes[i].version,
                deleted=changes[i].kind == "delete",
                applied_at=now,
            )
            for i in fresh
        ],
        update_conflicts=True,
        unique_fields=["aggregate", "object_id"],
        update_fields=["stream", "version", "deleted", "applied_at"],
    )
    # foreign keys are checked at commit by default; check them now, so that an entity
    # whose parent has not arrived fails while it can still fail alone
    connection.check_constraints(table_names=tables)
    for index in fresh:
        outcomes[index] = True
    return outcomes


# -- two-way entities --------------------------------------------------------------------


def _held(applied: Applied, object_id: str) -> Any:
    """The entity's state here as its outbox serialiser shows it (None: not held), its
    row locked."""
    model = applied.model
    pk = model._meta.pk
    assert pk is not None
    rows = model._default_manager.filter(pk=pk.to_python(object_id))
    if connection.vendor == "postgresql":
        rows = rows.select_for_update()
    instance = rows.first()
    published = registry.published().get(model)
    return published.serialize(instance) if instance is not None and published else None


def _two_way(change: Change, applied: Applied) -> bool:
    label, object_id, incoming = change.aggregate, change.id, change.stamp
    held = _held(applied, object_id)  # the entity's row lock first, then its version's
    row = stamps.lock(label, [object_id])[object_id]
    row.clock = max(row.clock, incoming.version)
    current = stamps.current(row)
    decision = decide(incoming, change.base, current, row.seen, registry.origin())
    if decision.duplicate:
        return False
    row.seen, row.stream = max(row.seen, incoming.version), change.stream
    if decision.conflict:
        assert current is not None
        SyncConflict.objects.create(
            stream=change.stream,
            aggregate=label,
            object_id=object_id,
            lost={"stamp": current.as_dict(), "state": held},
            won={
                "stamp": incoming.as_dict(),
                "base": change.base.as_dict() if change.base else None,
                "state": change.data,
            },
        )
    if decision.apply:
        with recording.suppressed(label):
            applied.apply(object_id, change.kind, change.data)
        row.rank, row.version, row.origin = incoming.rank, incoming.version, incoming.origin
    stamps.save([row])
    connection.check_constraints(table_names=[applied.model._meta.db_table])
    return decision.apply
