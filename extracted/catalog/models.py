"""What the catalog service adds to the catalog tables it serves: the sync's bookkeeping."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SyncState(models.Model):
    """The newest version applied per entity: an event at or below it changes nothing,
    so duplicates, redeliveries and late arrivals are absorbed."""

    aggregate = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    version = models.BigIntegerField()
    deleted = models.BooleanField(default=False)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "object_id"], name="one_state_per_entity")
        ]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.object_id} v{self.version}"
