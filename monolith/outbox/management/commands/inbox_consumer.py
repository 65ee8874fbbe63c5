"""Apply a stream from another service: ``python -m monolith.manage inbox_consumer``.

Long-polls the queue of routing.yaml's stream (``--stream orders``; ``--routing``,
default ``$STRANGLER_ROUTING`` or ``routing.yaml``) and applies each event through
``settings.INBOX`` until SIGTERM/SIGINT (``--drain``: until the queue is empty).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import boto3
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from facade.routing.loader import load_table
from facade.sync.consumer import Consumer
from facade.sync.queues import wait_for_queue
from monolith.outbox.inbox import apply


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml")
        )
        parser.add_argument("--stream", default="orders")
        parser.add_argument("--wait", type=int, default=5, help="long-poll seconds (1-20)")
        parser.add_argument("--drain", action="store_true", help="stop once the queue is empty")

    def handle(self, *args: Any, **options: Any) -> None:
        stream = load_table(options["routing"]).stream(options["stream"])
        client = boto3.client("sqs")
        url = wait_for_queue(client, stream.queue)
        consumer = Consumer(client, url, apply, transaction.atomic, wait=options["wait"])
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(f"inbox consumer: {stream.queue} → monolith database")
        if options["drain"]:
            consumer.drain(stop.is_set)
        else:
            consumer.run(stop.is_set)
        self.stdout.write(
            f"inbox consumer stopped: {consumer.applied} applied, {consumer.skipped} already "
            f"applied, {consumer.failed} failed"
        )
