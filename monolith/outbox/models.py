from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventKind(models.TextChoices):
    UPSERT = "upsert"
    DELETE = "delete"


class OutboxEvent(models.Model):
    """A change waiting to be (or already) published. ``id`` orders the events and is the
    version consumers compare: for one entity, a later change always has a larger id,
    because its writer waited for the earlier one's row lock before inserting."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    stream = models.CharField(max_length=64)
    aggregate = models.CharField(max_length=100)  # model label, e.g. "catalog.Product"
    aggregate_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=EventKind.choices)
    payload = models.JSONField(null=True)
    origin = models.CharField(max_length=32)
    # two-way entities: {"rank", "version", "origin", "base"} (monolith.outbox.versions);
    # null for one-way streams, whose version is the row's id
    stamp = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["stream", "id"],
                condition=Q(published_at__isnull=True),
                name="outbox_pending",
            ),
            models.Index(fields=["aggregate", "aggregate_id", "id"], name="outbox_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} #{self.pk} {self.kind} {self.aggregate}:{self.aggregate_id}"


class BackfillProgress(models.Model):
    """How far ``outbox_backfill`` got for a model, so an interrupted run resumes."""

    label = models.CharField(max_length=100, unique=True)
    last_id = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.label} after {self.last_id}"


class EntityVersion(models.Model):
    """Where an entity stands in the sync, per entity another service sends or writes too:
    the stamp of its current state here (``rank``, ``version``, ``origin``: who made it)
    and ``seen``, the highest version received from the other side — an event at or
    below it changes nothing (duplicates, redeliveries, overtaken changes)."""

    stream = models.CharField(max_length=64)  # the stream it last came from, if any
    aggregate = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    rank = models.IntegerField(default=0)
    version = models.BigIntegerField()
    origin = models.CharField(max_length=32)
    seen = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "object_id"], name="one_entity_version")
        ]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.object_id} v{self.version} by {self.origin}"


class SyncConflict(models.Model):
    """A change made here that lost to one made concurrently on the other side
    (``facade.sync.versions``: the losing side records a conflict, so each is recorded
    once). Both states are kept, so the discarded change can be reviewed."""

    stream = models.CharField(max_length=64)  # the stream the winning change came from
    aggregate = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    lost = models.JSONField()  # {"stamp": ..., "state": ...}: this side's change
    won = models.JSONField()  # {"stamp": ..., "base": ..., "state": ...}: the other side's
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["stream", "id"], name="conflict_stream")]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.object_id}: a change made here lost ({self.stream})"
