"""The sync's tables in a Django database: the outbox, what was applied, id allocation."""

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
    version consumers of a one-way stream compare: for one entity, a later change always
    has a larger id, because its writer waited for the earlier one's row lock before
    inserting. A row SQS refused for good (too large, invalid characters) is **parked**:
    it leaves the stream, keeps its error, and ``strangler sync dlq`` shows it; one
    refused for a while waits until ``retry_at``, with its entity's later rows."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    stream = models.CharField(max_length=64)
    aggregate = models.CharField(max_length=100)  # model label, e.g. "catalog.Product"
    aggregate_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=EventKind.choices)
    payload = models.JSONField(null=True)
    origin = models.CharField(max_length=32)
    # two-way entities: {"rank", "version", "origin", "base"} (facade.sync.conflict);
    # null for one-way streams, whose version is the row's id
    stamp = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["stream", "id"],
                condition=Q(published_at__isnull=True, parked_at__isnull=True),
                name="outbox_pending",
            ),
            models.Index(
                fields=["stream", "retry_at"],
                condition=Q(published_at__isnull=True, retry_at__isnull=False),
                name="outbox_waiting",
            ),
            models.Index(
                fields=["stream", "id"], condition=Q(parked_at__isnull=False), name="outbox_parked"
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
    """Where a two-way entity stands in the sync: the stamp of its current state here
    (``rank``, ``version``, ``origin``: who made it), ``seen``, the highest version
    received from the other side (an event at or below it changes nothing), and
    ``clock``, the highest version made, held or received here (a change made here takes
    the next one: ``facade.sync.conflict``)."""

    stream = models.CharField(max_length=64)  # the stream it last came from, if any
    aggregate = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    rank = models.IntegerField(default=0)
    version = models.BigIntegerField()
    origin = models.CharField(max_length=32)
    seen = models.BigIntegerField(default=0)
    clock = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "object_id"], name="one_entity_version")
        ]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.object_id} v{self.version} by {self.origin}"


class SyncConflict(models.Model):
    """A change made here that lost to one made concurrently on the other side
    (``facade.sync.conflict``: the losing side records a conflict, so each is recorded
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


class AppliedVersion(models.Model):
    """The newest version applied per entity of a one-way stream: an event at or below
    it changes nothing, so duplicates, redeliveries and late arrivals are absorbed."""

    stream = models.CharField(max_length=64)
    aggregate = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    version = models.BigIntegerField()
    deleted = models.BooleanField(default=False)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "object_id"], name="one_applied_version")
        ]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.object_id} v{self.version}"


class IdCounter(models.Model):
    """The next id of a model whose ids this side allocates from a range of its own
    (``facade.sync.django.ids``), on databases without sequences of their own."""

    label = models.CharField(max_length=100, unique=True)
    next_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.label}: next {self.next_id}"
