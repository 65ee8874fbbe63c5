"""What this Django project publishes to the sync and applies from it, read once from
``settings.STRANGLER_SYNC`` (the keys are documented in ``facade.sync.django``).

A model both published and applied is **two-way**: both sides change it, so its events
carry a version stamp (``facade.sync.conflict``) and its lifecycle and id split come
from the pair of streams routing.yaml declares (``sync.<stream>.two_way``) — read from
``STRANGLER_SYNC["routing"]``, or from the environment ``strangler up`` gives (the same
declaration, rendered).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from facade.sync.conflict import TwoWay, two_way_from_environment

Serializer = Callable[[Any], dict[str, Any]]
Applier = Callable[[str, str, "dict[str, Any] | None"], None]
DEFAULT_SERIALIZER = "facade.sync.django.serializers:concrete_fields"
DEFAULT_APPLIER = "facade.sync.django.appliers:replace_row"


@dataclass(frozen=True)
class Published:
    stream: str
    label: str  # "app_label.ModelName"
    model: type[models.Model]
    serialize: Serializer
    two_way: TwoWay | None = None
    # models whose rows are part of this entity's state, with their key to it: a change
    # of one records the entity (an order's lines)
    parts: Mapping[type[models.Model], str] = field(default_factory=dict)

    def rank(self, state: Mapping[str, Any]) -> int:
        return self.two_way.rank(state) if self.two_way else 0


@dataclass(frozen=True)
class Applied:
    stream: str
    label: str
    model: type[models.Model]
    apply: Applier  # (object_id, kind, data)
    two_way: TwoWay | None = None
    copies: bool = False  # the ready-made applier: rows copied as they came (batchable)


def function(spec: str, what: str) -> Any:
    """The callable a ``"module:function"`` setting names."""
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImproperlyConfigured(f"STRANGLER_SYNC: {what} {spec!r}: {exc}") from exc


def config() -> Mapping[str, Any]:
    value = getattr(settings, "STRANGLER_SYNC", None) or {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured("STRANGLER_SYNC must be a dict (see facade.sync.django)")
    unknown = set(value) - {"origin", "routing", "publish", "apply"}
    if unknown:
        raise ImproperlyConfigured(
            f"STRANGLER_SYNC: unknown keys {sorted(unknown)}; allowed: origin, routing, "
            "publish, apply"
        )
    return value


def origin() -> str:
    """This side's name: its backend in routing.yaml, and the origin of its changes."""
    return str(config().get("origin", "monolith"))


def _model(label: str, where: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ImproperlyConfigured(f"STRANGLER_SYNC[{where!r}]: {exc}") from exc


@cache
def _routing() -> tuple[dict[str, TwoWay], frozenset[str]]:
    """(two-way pairs by stream name, every stream's name) of this deployment: the
    pairs from the environment (a side that reads no routing file), else routing.yaml."""
    found = two_way_from_environment()
    path = config().get("routing") or os.environ.get("STRANGLER_ROUTING", "routing.yaml")
    streams: frozenset[str] = frozenset(found)
    if os.path.exists(str(path)):
        from facade.routing.loader import load_table

        table = load_table(str(path))
        streams |= {s.name for s in table.sync}
        if not found:
            found = {s.name: s.two_way for s in table.sync if s.two_way is not None}
    return found, streams


def pairs() -> dict[str, TwoWay]:
    """routing.yaml's two-way pairs by stream name."""
    return _routing()[0]


def _pair_of(label: str, published_on: str, applied_from: str) -> TwoWay | None:
    """The pair of streams a model both published and applied travels on; None when this
    deployment runs neither stream (its routing.yaml does not name them)."""
    found, streams = _routing()
    pair = found.get(published_on)
    if pair is None and not {published_on, applied_from} & streams:
        return None
    if pair is None or set(pair.streams) != {published_on, applied_from}:
        raise ImproperlyConfigured(
            f"STRANGLER_SYNC: {label} is published on {published_on!r} and applied from "
            f"{applied_from!r}, so both sides change it; declare the pair in routing.yaml "
            f"(sync.{published_on}.two_way: {{reverse: {applied_from}, lifecycle: …}}) "
            "and point STRANGLER_SYNC['routing'] (or $STRANGLER_ROUTING) at it"
        )
    if origin() not in pair.sides:
        raise ImproperlyConfigured(
            f"STRANGLER_SYNC['origin'] is {origin()!r}, not a side of the pair "
            f"{' / '.join(pair.streams)} ({' and '.join(pair.sides)})"
        )
    return pair


def _applied_specs() -> dict[str, tuple[str, str]]:
    """label → (stream, applier spec)."""
    found: dict[str, tuple[str, str]] = {}
    for stream, aggregates in (config().get("apply") or {}).items():
        for label, spec in (aggregates or {}).items():
            if label in found:
                raise ImproperlyConfigured(f"STRANGLER_SYNC['apply']: {label} is in two streams")
            found[str(label)] = (str(stream), str(spec or DEFAULT_APPLIER))
    return found


@cache
def published() -> dict[type[models.Model], Published]:
    found: dict[type[models.Model], Published] = {}
    incoming = _applied_specs()
    for stream, aggregates in (config().get("publish") or {}).items():
        for label, spec in (aggregates or {}).items():
            model = _model(label, "publish")
            if model in found:
                raise ImproperlyConfigured(f"STRANGLER_SYNC['publish']: {label} is in two streams")
            given = spec if isinstance(spec, Mapping) else {"serialize": spec or DEFAULT_SERIALIZER}
            unknown = set(given) - {"serialize", "parts"}
            if unknown:
                raise ImproperlyConfigured(
                    f"STRANGLER_SYNC['publish'][{stream!r}][{label!r}] takes 'serialize' and "
                    f"'parts', got {sorted(given)}"
                )
            parts = {
                _model(part, "publish"): str(key)
                for part, key in (given.get("parts") or {}).items()
            }
            label = model._meta.label
            two_way = _pair_of(label, stream, incoming[label][0]) if label in incoming else None
            found[model] = Published(
                str(stream),
                label,
                model,
                function(str(given.get("serialize") or DEFAULT_SERIALIZER), "serialiser"),
                two_way,
                parts,
            )
    return found


@cache
def parts() -> dict[type[models.Model], tuple[Published, str]]:
    """Models that are part of a published entity → (the entity, their key to it)."""
    return {
        part: (entity, key) for entity in published().values() for part, key in entity.parts.items()
    }


@cache
def applied() -> dict[str, Applied]:
    """By label: what this side applies, and how."""
    outgoing = {p.label: p for p in published().values()}
    found: dict[str, Applied] = {}
    for label, (stream, spec) in _applied_specs().items():
        model = _model(label, "apply")
        publishing = outgoing.get(model._meta.label)
        copies = spec == DEFAULT_APPLIER
        found[model._meta.label] = Applied(
            stream,
            model._meta.label,
            model,
            partial(function(spec, "applier"), model._meta.label)
            if copies
            else function(spec, "applier"),
            _pair_of(model._meta.label, publishing.stream, stream) if publishing else None,
            copies,
        )
    return found


def streams() -> list[str]:
    """The streams this side publishes."""
    return sorted({p.stream for p in published().values()})


def applied_streams() -> list[str]:
    return sorted({a.stream for a in applied().values()})


def by_label() -> dict[str, Published]:
    return {p.label: p for p in published().values()}


def clear() -> None:
    """Forget what was read (tests that change the settings)."""
    for cached in (_routing, published, parts, applied):
        cached.cache_clear()
