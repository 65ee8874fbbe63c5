"""Publish chosen rows again: ``python -m monolith.manage outbox_emit LABEL --ids 1,2,3``.

The repair of ``strangler sync verify --repair``: each id gets a new event with the row's
current state (or a delete, if the row is gone), newer than anything sent before.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from monolith.outbox.recording import record_ids
from monolith.outbox.registry import registrations


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("label")
        parser.add_argument("--ids", required=True, help="comma-separated primary keys")

    def handle(self, *args: Any, **options: Any) -> None:
        by_label = {r.label: model for model, r in registrations().items()}
        model = by_label.get(options["label"])
        if model is None:
            raise CommandError(f"{options['label']!r} is not published")
        pk = model._meta.pk
        assert pk is not None
        ids = [pk.to_python(i) for i in options["ids"].split(",") if i.strip()]
        with transaction.atomic():
            record_ids(model, ids)
        self.stdout.write(f"emitted {len(ids)} {options['label']} events")
