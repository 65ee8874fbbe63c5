"""Publishing outbox rows to SQS FIFO queues.

One pass (``Relay.pass_once``) takes up to 100 pending rows of a stream — on
PostgreSQL with ``SELECT … FOR UPDATE SKIP LOCKED``, so several relays share the work
without sending a row twice at once; on SQLite the IMMEDIATE transaction serialises
them — sends them in batches of 10 (``SendMessageBatch``; MessageGroupId = the entity, so
each entity's events stay in order; MessageDeduplicationId = the event id) and marks the
sent ones, in the same transaction. A relay killed after sending but before committing
leaves the rows pending: they are sent again with the same deduplication id, and
consumers, which compare versions, apply them at most once. A row SQS refuses stays
pending with its error recorded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import EndpointConnectionError
from django.db import connection, transaction
from django.utils import timezone

from monolith.outbox.models import OutboxEvent

log = logging.getLogger(__name__)
BATCH = 10  # SendMessageBatch's maximum
BATCHES_PER_PASS = 10  # SendMessageBatch calls per transaction: fewer commits per event


def message(event: OutboxEvent) -> dict[str, Any]:
    """The event as the consumers read it. A one-way stream's version is the outbox row's
    id; a two-way entity's is its stamp (``rank``, ``version``, ``base``)."""
    body = {
        "event": str(event.event_id),
        "stream": event.stream,
        "aggregate": event.aggregate,
        "id": event.aggregate_id,
        "version": event.pk,
        "kind": event.kind,
        "data": event.payload,
        "origin": event.origin,
        "at": event.created_at.isoformat(),
    }
    if event.stamp:
        body.update(
            version=event.stamp["version"], rank=event.stamp["rank"], base=event.stamp["base"]
        )
    return body


def group_id(event: OutboxEvent) -> str:
    return f"{event.aggregate}:{event.aggregate_id}"[:128]


@dataclass
class Relay:
    client: Any  # boto3 SQS client
    queues: dict[str, str]  # stream → queue URL
    batch: int = BATCH
    batches_per_pass: int = BATCHES_PER_PASS
    after_send: Callable[[list[OutboxEvent]], None] | None = None  # test hook: crash here
    sent: int = field(default=0, init=False)

    def pending(self, stream: str) -> list[OutboxEvent]:
        rows = OutboxEvent.objects.filter(stream=stream, published_at__isnull=True).order_by("id")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        return list(rows[: self.batch * self.batches_per_pass])

    def pass_once(self, stream: str) -> int:
        """Send up to ``batches_per_pass`` batches of the stream in one transaction;
        return how many events were published."""
        published: list[int] = []
        with transaction.atomic():
            events = self.pending(stream)
            if not events:
                return 0
            for start in range(0, len(events), self.batch):
                published += self._send(stream, events[start : start + self.batch])
            OutboxEvent.objects.filter(pk__in=published).update(published_at=timezone.now())
        self.sent += len(published)
        return len(published)

    def _send(self, stream: str, events: list[OutboxEvent]) -> list[int]:
        answer = self.client.send_message_batch(
            QueueUrl=self.queues[stream],
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(message(e), separators=(",", ":")),
                    "MessageGroupId": group_id(e),
                    "MessageDeduplicationId": e.event_id.hex,
                }
                for i, e in enumerate(events)
            ],
        )
        if self.after_send is not None:
            self.after_send(events)
        for failure in answer.get("Failed", []):
            event = events[int(failure["Id"])]
            event.attempts += 1
            event.last_error = f"{failure.get('Code')}: {failure.get('Message', '')}"[:2000]
            event.save(update_fields=["attempts", "last_error"])
            log.warning("outbox event %s refused by SQS: %s", event.pk, event.last_error)
        return [events[int(entry["Id"])].pk for entry in answer.get("Successful", [])]

    def drain(self, stream: str) -> int:
        total = 0
        while published := self.pass_once(stream):
            total += published
        return total

    def run(self, streams: list[str], stop: Callable[[], bool], idle: float = 0.2) -> None:
        """Publish until ``stop()``; sleep ``idle`` seconds when nothing is pending."""
        while not stop():
            busy = False
            for stream in streams:
                try:
                    busy = self.pass_once(stream) > 0 or busy
                except EndpointConnectionError as exc:
                    log.warning("outbox relay: SQS unreachable (%s); retrying", exc)
                    time.sleep(idle)
                except Exception:
                    log.exception("outbox relay: publishing %s failed; retrying", stream)
                    time.sleep(idle)
            if not busy:
                time.sleep(idle)
