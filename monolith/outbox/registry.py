"""What the outbox publishes, read from ``settings.OUTBOX``.

A model's entry names its serialiser (``"module:function"``), or a mapping with the
serialiser and, for entities the other side writes too, the ``rank`` function of the
conflict rule (``facade.sync.versions``)::

    "orders.Order": {"serialize": "monolith.orders.sync:order_state",
                     "rank": "monolith.orders.sync:order_rank"}

A model that is also in ``settings.INBOX`` is **two-way**: both sides change it, so its
events carry a per-entity version stamp (``monolith.outbox.versions``) instead of the
outbox sequence.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

Serializer = Callable[[Any], dict[str, Any]]
Rank = Callable[[Any], int]


def _no_rank(instance: Any) -> int:
    return 0


@dataclass(frozen=True)
class Registration:
    stream: str
    label: str  # "app_label.ModelName"
    serialize: Serializer
    rank: Rank = _no_rank
    two_way: bool = False  # the other side writes it too (it is in settings.INBOX)


def function(spec: str, what: str) -> Any:
    """The callable a ``"module:function"`` setting names."""
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{what} {spec!r}: {exc}") from exc


def inbound_labels() -> set[str]:
    """The models other services publish to this one (``settings.INBOX``)."""
    return {
        label
        for aggregates in (getattr(settings, "INBOX", {}) or {}).values()
        for label in aggregates
    }


@cache
def registrations() -> dict[type[models.Model], Registration]:
    config = getattr(settings, "OUTBOX", {}) or {}
    found: dict[type[models.Model], Registration] = {}
    for stream, models_ in (config.get("streams") or {}).items():
        for label, spec in models_.items():
            try:
                model = apps.get_model(label)
            except LookupError as exc:
                raise ImproperlyConfigured(f"OUTBOX stream {stream!r}: {exc}") from exc
            if model in found:
                raise ImproperlyConfigured(f"OUTBOX: {label} is in two streams")
            given = spec if isinstance(spec, dict) else {"serialize": spec}
            unknown = set(given) - {"serialize", "rank"}
            if unknown or "serialize" not in given:
                raise ImproperlyConfigured(
                    f"OUTBOX stream {stream!r}: {label} takes 'serialize' and 'rank', got "
                    f"{sorted(given)}"
                )
            found[model] = Registration(
                stream,
                model._meta.label,
                function(given["serialize"], "OUTBOX serialiser"),
                function(given["rank"], "OUTBOX rank") if "rank" in given else _no_rank,
                two_way=model._meta.label in inbound_labels(),
            )
    return found


def origin() -> str:
    return str((getattr(settings, "OUTBOX", {}) or {}).get("origin", "monolith"))


def streams() -> list[str]:
    return sorted({r.stream for r in registrations().values()})
