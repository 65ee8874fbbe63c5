"""Apply a stream from another service: ``python -m monolith.manage inbox_consumer``.

Long-polls the queue of routing.yaml's stream (``--stream orders-to-monolith``; ``--routing``,
default ``$STRANGLER_ROUTING`` or ``routing.yaml``) and applies each event through
``settings.INBOX`` until SIGTERM/SIGINT (``--drain``: until the queue is empty).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from facade.sync import consumer
from monolith.outbox.inbox import apply


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        consumer.add_arguments(parser, stream="orders-to-monolith")

    def handle(self, *args: Any, **options: Any) -> None:
        consumer.consume(options, apply, transaction.atomic, self.stdout.write, "monolith database")
