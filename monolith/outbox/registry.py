"""What the outbox publishes, read from ``settings.OUTBOX``."""

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


@dataclass(frozen=True)
class Registration:
    stream: str
    label: str  # "app_label.ModelName"
    serialize: Serializer


def _function(spec: str) -> Serializer:
    module, _, name = spec.partition(":")
    try:
        function: Serializer = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ImproperlyConfigured(f"OUTBOX serialiser {spec!r}: {exc}") from exc
    return function


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
            found[model] = Registration(stream, model._meta.label, _function(spec))
    return found


def origin() -> str:
    return str((getattr(settings, "OUTBOX", {}) or {}).get("origin", "monolith"))


def streams() -> list[str]:
    return sorted({r.stream for r in registrations().values()})
