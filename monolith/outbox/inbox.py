"""The monolith's inbox: applying other services' changes, each at most once, and settling
changes both sides made concurrently.

Settings::

    INBOX = {"orders-to-monolith": {"orders.Order": "monolith.orders.sync:apply_order"}}

(stream → aggregate → ``applier(object_id, kind, data)``). ``apply`` locks the entity's
row and its ``EntityVersion``, lets ``facade.sync.versions.decide`` judge the event
against the state held here — a redelivery or an overtaken change does nothing, the
greater stamp wins, a change of this side's that loses to a concurrent one is recorded
in ``SyncConflict`` with both states — calls the applier when the incoming state wins,
and records the stamp, all in one savepoint. The applier runs with the outbox
suppressed: a change that came from another service is never published back to it (no
echo).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction

from facade.sync.consumer import Rejected
from facade.sync.versions import Stamp, decide
from monolith.outbox import recording, versions
from monolith.outbox.models import SyncConflict
from monolith.outbox.registry import origin, registrations

Applier = Callable[[str, str, dict[str, Any] | None], None]


@cache
def appliers() -> dict[str, Applier]:
    found: dict[str, Applier] = {}
    for aggregates in (getattr(settings, "INBOX", {}) or {}).values():
        for label, spec in aggregates.items():
            module, _, name = spec.partition(":")
            found[label] = getattr(importlib.import_module(module), name)
    return found


def _parse(body: dict[str, Any]) -> tuple[str, str, str, Any, str, Stamp, Stamp | None]:
    try:
        label, object_id = str(body["aggregate"]), str(body["id"])
        incoming = Stamp(int(body.get("rank", 0)), int(body["version"]), str(body["origin"]))
        base = Stamp.from_dict(body.get("base"))
        return label, object_id, body["kind"], body.get("data"), str(body.get("stream", "")), \
            incoming, base  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(f"malformed event: {exc!r}") from exc


def _held(label: str, object_id: str) -> Any:
    """The entity's state here as its outbox serialiser shows it (None: not held, or not
    published by this side), its row locked."""
    model = apps.get_model(label)
    pk = model._meta.pk
    assert pk is not None
    rows = model._default_manager.filter(pk=pk.to_python(object_id))
    if connection.vendor == "postgresql":
        rows = rows.select_for_update()
    instance = rows.first()
    registration = registrations().get(model)
    return registration.serialize(instance) if instance and registration else None


def apply(body: dict[str, Any]) -> bool:
    """Apply one event; False when it changed nothing (a duplicate, an overtaken change,
    or a concurrent change that lost)."""
    label, object_id, kind, data, stream, incoming, base = _parse(body)
    applier = appliers().get(label)
    if applier is None:
        raise Rejected(f"no applier for {label!r} (settings.INBOX)")
    if kind not in ("upsert", "delete") or (kind == "upsert" and not isinstance(data, dict)):
        raise Rejected(f"event kind {kind!r} with data {type(data).__name__}")
    with transaction.atomic():
        held = _held(label, object_id)  # the entity's row lock first, then its version's
        row = versions.lock(label, [object_id])[object_id]
        current = versions.current(row)
        decision = decide(incoming, base, current, row.seen, origin())
        if decision.duplicate:
            return False
        row.seen, row.stream = max(row.seen, incoming.version), stream
        if decision.conflict:
            assert current is not None
            SyncConflict.objects.create(
                stream=stream,
                aggregate=label,
                object_id=object_id,
                lost={"stamp": current.as_dict(), "state": held},
                won={"stamp": incoming.as_dict(), "base": body.get("base"), "state": data},
            )
        if decision.apply:
            with recording.suppressed(label):
                applier(object_id, kind, data)
            row.rank, row.version, row.origin = incoming.rank, incoming.version, incoming.origin
        versions.save([row])
        connection.check_constraints()
    return decision.apply
