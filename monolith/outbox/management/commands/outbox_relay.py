"""Publish the outbox to SQS: ``python -m monolith.manage outbox_relay``.

Reads the streams' queues from routing.yaml (``--routing``, default ``$STRANGLER_ROUTING``
or ``routing.yaml``); boto3 finds SQS from the environment (``AWS_ENDPOINT_URL_SQS`` for
a local stand-in). Runs until SIGTERM/SIGINT, finishing the batch in flight; ``--once``
publishes what is pending and exits. Several relays may run at once.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from django.core.management.base import BaseCommand, CommandError, CommandParser

from facade.routing.loader import load_table
from facade.sync.consumer import stop_on_signals
from facade.sync.queues import wait_for_queue
from monolith.outbox.registry import streams
from monolith.outbox.relay import Relay


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml")
        )
        parser.add_argument("--once", action="store_true", help="publish what is pending, exit")
        parser.add_argument("--idle", type=float, default=0.2, help="seconds between polls")

    def handle(self, *args: Any, **options: Any) -> None:
        table = load_table(options["routing"])
        client = boto3.client("sqs")
        queues: dict[str, str] = {}
        for name in streams():
            try:
                stream = table.stream(name)
            except KeyError:
                self.stderr.write(
                    f"{options['routing']} has no sync stream {name!r}: its events stay in the "
                    "outbox until it does (settings.OUTBOX publishes to it)"
                )
                continue
            queues[name] = wait_for_queue(client, stream.queue)
        if not queues:
            raise CommandError(
                f"{options['routing']}: none of the outbox's streams ({', '.join(streams())}) "
                "is in its sync: block"
            )
        relay = Relay(client, queues)
        if options["once"]:
            total = sum(relay.drain(name) for name in queues)
            self.stdout.write(f"published {total} events")
            return
        stop = stop_on_signals()
        self.stdout.write(f"outbox relay: {', '.join(f'{s} → {q}' for s, q in queues.items())}")
        relay.run(list(queues), stop.is_set, options["idle"])
        self.stdout.write(f"outbox relay stopped after publishing {relay.sent} events")
