"""The monolith's inbox: applying other services' changes, each version at most once.

Settings::

    INBOX = {"orders": {"orders.Order": "monolith.orders.sync:apply_order"}}

(stream → aggregate → ``applier(object_id, kind, data)``). ``apply`` checks the entity's
``InboxState`` version under a row lock, calls the applier, and records the version, in
one savepoint. The applier runs with the outbox suppressed: a change that came from
another service is never published back to it (no echo).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from facade.sync.consumer import Rejected
from monolith.outbox import recording
from monolith.outbox.models import InboxState

Applier = Callable[[str, str, dict[str, Any] | None], None]


@cache
def appliers() -> dict[str, Applier]:
    found: dict[str, Applier] = {}
    for aggregates in (getattr(settings, "INBOX", {}) or {}).values():
        for label, spec in aggregates.items():
            module, _, name = spec.partition(":")
            found[label] = getattr(importlib.import_module(module), name)
    return found


def apply(body: dict[str, Any]) -> bool:
    """Apply one event; False when it was already applied or is older than the state."""
    try:
        label, object_id, version = body["aggregate"], str(body["id"]), int(body["version"])
        kind, data, origin = body["kind"], body.get("data"), str(body.get("origin", ""))
        stream = str(body.get("stream", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(f"malformed event: {exc!r}") from exc
    applier = appliers().get(label)
    if applier is None:
        raise Rejected(f"no applier for {label!r} (settings.INBOX)")
    if kind not in ("upsert", "delete") or (kind == "upsert" and not isinstance(data, dict)):
        raise Rejected(f"event kind {kind!r} with data {type(data).__name__}")
    with transaction.atomic():
        state = (
            InboxState.objects.select_for_update()
            .filter(aggregate=label, object_id=object_id)
            .first()
        )
        if state is not None and state.version >= version:
            return False
        with recording.suppressed():
            applier(object_id, kind, data)
        InboxState.objects.update_or_create(
            aggregate=label,
            object_id=object_id,
            defaults={"version": version, "origin": origin, "stream": stream},
        )
        connection.check_constraints()
    return True
