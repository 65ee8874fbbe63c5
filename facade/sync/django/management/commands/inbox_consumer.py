"""Apply a stream from another service: ``manage.py inbox_consumer --stream NAME``.

Long-polls the queue of routing.yaml's stream (``--routing``, default
``$STRANGLER_ROUTING`` or ``routing.yaml``) and applies each change through
``STRANGLER_SYNC["apply"]`` (``facade.sync.django.inbox``) until SIGTERM/SIGINT
(``--drain``: until the queue is empty). SQS or database outages are waited out; a
configuration problem stops it with exit status 2 and what to fix.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from facade.sync import consumer
from facade.sync.django import registry
from facade.sync.django.inbox import apply_batch, ready
from facade.sync.sqs import ConfigurationProblem


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        streams = registry.applied_streams()
        consumer.add_arguments(parser, stream=streams[0] if len(streams) == 1 else None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stream"] not in registry.applied_streams():
            raise CommandError(
                f"this side applies no stream {options['stream']!r} (STRANGLER_SYNC['apply']: "
                f"{', '.join(registry.applied_streams()) or 'none'})",
                returncode=2,
            )
        try:
            consumer.consume(options, apply_batch, self.stdout.write, "this database", ready)
        except ConfigurationProblem as exc:
            raise CommandError(str(exc), returncode=2) from exc
