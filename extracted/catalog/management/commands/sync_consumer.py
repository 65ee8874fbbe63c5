"""Apply the catalog stream: ``python -m extracted.catalog.manage sync_consumer``.

Long-polls the queue of routing.yaml's stream (``--stream catalog``; ``--routing``,
default ``$STRANGLER_ROUTING`` or ``routing.yaml``) until SIGTERM/SIGINT, finishing
the batch in hand (``--drain``: until the queue is empty). boto3 finds SQS from the
environment.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from extracted.catalog.sync import apply
from facade.sync import consumer


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        consumer.add_arguments(parser, stream="catalog")

    def handle(self, *args: Any, **options: Any) -> None:
        consumer.consume(options, apply, transaction.atomic, self.stdout.write, "catalog database")
