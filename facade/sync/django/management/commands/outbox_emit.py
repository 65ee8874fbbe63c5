"""Publish entities again: ``manage.py outbox_emit LABEL --ids 1,2,3`` or
``manage.py outbox_emit --parked [--stream NAME]``.

The repair of ``strangler sync verify --repair``: each id gets a new event with the row's
current state (or a delete, if the row is gone), newer than anything sent before.
``--parked`` does the same for every entity whose event the relay set aside (too large,
or refused by SQS) once the cause is fixed, and clears those set-aside events: the new
event carries the entity's current state, which supersedes them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from facade.sync.django.models import OutboxEvent
from facade.sync.django.recording import record_ids
from facade.sync.django.registry import by_label


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("label", nargs="?")
        parser.add_argument("--ids", help="comma-separated primary keys")
        parser.add_argument("--parked", action="store_true", help="every set-aside entity")
        parser.add_argument("--stream", help="with --parked: only this stream's")

    def handle(self, *args: Any, **options: Any) -> None:
        published = by_label()
        if options["parked"]:
            self._parked(published, options["stream"])
            return
        if not options["label"] or not options["ids"]:
            raise CommandError("give LABEL --ids 1,2,… or --parked", returncode=2)
        entity = published.get(options["label"])
        if entity is None:
            raise CommandError(f"{options['label']!r} is not published", returncode=2)
        pk = entity.model._meta.pk
        assert pk is not None
        ids = [pk.to_python(i) for i in options["ids"].split(",") if i.strip()]
        with transaction.atomic():
            record_ids(entity.model, ids)
        self.stdout.write(f"emitted {len(ids)} {options['label']} events")

    def _parked(self, published: dict[str, Any], stream: str | None) -> None:
        rows = OutboxEvent.objects.filter(parked_at__isnull=False)
        if stream:
            rows = rows.filter(stream=stream)
        emitted = 0
        with transaction.atomic():
            wanted: dict[str, set[str]] = {}
            for label, object_id in rows.values_list("aggregate", "aggregate_id"):
                wanted.setdefault(label, set()).add(object_id)
            for label, object_ids in sorted(wanted.items()):
                entity = published.get(label)
                if entity is None:
                    continue
                pk = entity.model._meta.pk
                assert pk is not None
                record_ids(entity.model, [pk.to_python(i) for i in object_ids])
                emitted += len(object_ids)
            cleared, _ = rows.delete()
        self.stdout.write(f"emitted {emitted} set-aside entities again ({cleared} events cleared)")
