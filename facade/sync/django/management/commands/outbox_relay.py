"""Publish the outbox to SQS: ``manage.py outbox_relay``.

Reads the streams' queues from routing.yaml (``--routing``, default ``$STRANGLER_ROUTING``
or ``routing.yaml``); boto3 finds SQS from the environment (``AWS_ENDPOINT_URL_SQS`` for
a local stand-in). Runs until SIGTERM/SIGINT, finishing the pass in flight, waiting out
SQS or database outages; ``--once`` publishes what is pending and exits. Several relays
may run at once. A configuration problem stops it with exit status 2 and what to fix.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from facade.routing.loader import load_table
from facade.sync import sqs
from facade.sync.consumer import stop_on_signals
from facade.sync.django.registry import streams
from facade.sync.django.relay import Relay
from facade.sync.queues import wait_for_queue


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
        try:
            client = sqs.client()
        except sqs.ConfigurationProblem as exc:
            raise CommandError(f"outbox relay: {exc}", returncode=2) from exc
        relay = Relay(client, {})
        for name in streams():
            try:
                stream = table.stream(name)
            except KeyError:
                self.stderr.write(
                    f"{options['routing']} has no sync stream {name!r}: its events stay in the "
                    "outbox until it does (STRANGLER_SYNC['publish'] publishes to it)"
                )
                continue
            try:
                relay.queues[name] = wait_for_queue(client, stream.queue)
            except sqs.ConfigurationProblem as exc:
                raise CommandError(str(exc), returncode=2) from exc
            relay.limits[name] = stream.max_message_bytes
        if not relay.queues:
            raise CommandError(
                f"{options['routing']}: none of the outbox's streams ({', '.join(streams())}) "
                "is in its sync: block",
                returncode=2,
            )
        if options["once"]:
            total = sum(relay.drain(name) for name in relay.queues)
            self.stdout.write(f"published {total} events")
            return
        stop = stop_on_signals()
        queues = relay.queues.items()
        self.stdout.write(f"outbox relay: {', '.join(f'{s} → {q}' for s, q in queues)}")
        try:
            sqs.run_worker(
                "outbox relay", lambda: relay.step(list(relay.queues)), stop, idle=options["idle"]
            )
        except sqs.ConfigurationProblem as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(
            f"outbox relay stopped after publishing {relay.sent} events ({relay.parked} set aside)"
        )
