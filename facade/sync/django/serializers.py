"""Ready-made serialisers for ``settings.STRANGLER_SYNC["publish"]``."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def concrete_fields(instance: models.Model) -> dict[str, Any]:
    """Every column of the row by attribute name (``category_id`` for a foreign key):
    the entity's full state, so a consumer needs nothing else and the newest event wins."""
    return {
        field.attname: _plain(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
    }
