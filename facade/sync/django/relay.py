"""Publishing outbox rows to SQS FIFO queues.

One pass (``Relay.pass_once``) takes up to 500 pending rows of a stream — on PostgreSQL
with ``SELECT … FOR UPDATE SKIP LOCKED``, so several relays share the work without
sending a row twice at once, and an entity whose earlier row another relay holds waits
for it — and sends them with ``SendMessageBatch`` (at most 10 entries and the stream's
``max_message_bytes`` per call; MessageGroupId = the entity, MessageDeduplicationId =
the SHA-256 of the body: ``facade.sync.messages``), in waves of batches sent side by
side in which no entity appears twice, so each entity's changes reach SQS in order. It
marks the sent rows in the same transaction. A relay killed after sending but before
committing leaves the rows pending: they are sent again with the same deduplication id,
and consumers, which compare versions, apply them at most once. On SQLite, whose one
write lock covers the whole database, the rows are read, sent, and then marked in a
short transaction of their own: the shop's writes never wait for SQS.

Nothing stalls a stream:

* a row whose message is larger than the stream allows, or that SQS refuses for good
  (``SenderFault``: invalid characters, too long), is **parked** with its error — it
  leaves the stream, ``strangler sync status`` counts it and ``strangler sync dlq``
  lists it — and the rows behind it flow on (they carry the entity's newer state);
* a row SQS refuses for now waits (``retry_at``, exponential backoff with jitter) with
  the rest of its entity, while other entities flow on;
* a call SQS refuses whole for a reason of its request is retried entry by entry, so
  the one to blame is parked alone;
* when a whole pass fails (SQS unreachable), its transaction rolls back and the attempt
  is recorded on the rows in a transaction of its own; the worker backs off and retries.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from facade.sync import sqs
from facade.sync.conflict import Stamp
from facade.sync.django.models import OutboxEvent
from facade.sync.messages import BATCH, MAX_MESSAGE_BYTES, Change, size

log = logging.getLogger(__name__)
ROWS_PER_PASS = 500  # rows per transaction: fewer commits per event
SENDS = 8  # a pass's batches sent side by side (SQS answers in milliseconds each)
RETRY_CAP = 300.0  # seconds a refused row waits at most before its next try


def change(event: OutboxEvent) -> Change:
    """The row as the consumers read it. A one-way stream's version is the outbox row's
    id; a two-way entity's is its stamp (``rank``, ``version``, ``base``)."""
    stamp = event.stamp or {}
    two_way = bool(stamp)
    return Change(
        stream=event.stream,
        aggregate=event.aggregate,
        id=event.aggregate_id,
        kind=event.kind,
        data=event.payload,
        version=int(stamp["version"]) if two_way else int(event.pk),
        origin=event.origin,
        event=str(event.event_id),
        at=event.created_at.isoformat(),
        rank=int(stamp.get("rank", 0)) if two_way else None,
        base=Stamp.from_dict(stamp.get("base")) if two_way else None,
    )


@dataclass
class Outcome:
    """What one pass did to its rows."""

    published: list[int] = field(default_factory=list)
    waiting: list[OutboxEvent] = field(default_factory=list)  # refused for now
    parked: list[OutboxEvent] = field(default_factory=list)  # refused for good


@dataclass
class Batch:
    """One SendMessageBatch: up to 10 rows, at most the stream's bytes."""

    rows: list[tuple[OutboxEvent, Change, str]] = field(default_factory=list)
    bytes: int = 0

    def add(self, event: OutboxEvent, item: Change, body: str, length: int) -> None:
        self.rows.append((event, item, body))
        self.bytes += length

    def without(self, blocked: set[tuple[str, str]]) -> Batch:
        """The batch less the rows of entities that wait for a retry."""
        if not blocked:
            return self
        kept = Batch()
        for event, item, body in self.rows:
            if (event.aggregate, event.aggregate_id) not in blocked:
                kept.add(event, item, body, size(body))
        return kept


@dataclass
class Relay:
    client: Any  # SQS client (facade.sync.sqs.client)
    queues: dict[str, str]  # stream → queue URL
    limits: dict[str, int] = field(default_factory=dict)  # stream → max message bytes
    rows_per_pass: int = ROWS_PER_PASS
    sends: int = SENDS  # SendMessageBatch calls in flight at once
    after_send: Callable[[list[OutboxEvent]], None] | None = None  # test hook: crash here
    clock: Callable[[], dt.datetime] = timezone.now
    rng: random.Random = field(default_factory=random.Random)
    sent: int = field(default=0, init=False)
    parked: int = field(default=0, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def pending(self, stream: str) -> list[OutboxEvent]:
        """Up to ``rows_per_pass`` rows ready to send, in order; a row waits while an
        earlier row of its entity waits to be retried."""
        now = self.clock()
        earlier = OutboxEvent.objects.filter(  # pending rows of the same entity before it
            stream=stream,
            published_at__isnull=True,
            parked_at__isnull=True,
            aggregate=OuterRef("aggregate"),
            aggregate_id=OuterRef("aggregate_id"),
            id__lt=OuterRef("id"),
        )
        rows = (
            OutboxEvent.objects.filter(
                Q(retry_at__isnull=True) | Q(retry_at__lte=now),
                stream=stream,
                published_at__isnull=True,
                parked_at__isnull=True,
            )
            .filter(~Exists(earlier.filter(retry_at__gt=now)))
            .order_by("id")
        )
        if connection.vendor != "postgresql":
            return list(rows[: self.rows_per_pass])
        # Several relays share the work (SKIP LOCKED); an entity whose earlier change
        # another relay holds (locked, so skipped here) waits for it: each entity's
        # changes reach SQS in order.
        taken = list(
            rows.annotate(behind=Exists(earlier)).select_for_update(skip_locked=True, of=("self",))[
                : self.rows_per_pass
            ]
        )
        mine: set[tuple[str, str]] = set()
        held_elsewhere: set[tuple[str, str]] = set()
        for row in taken:
            entity = (row.aggregate, row.aggregate_id)
            if entity not in mine and row.behind:  # its earlier row is not in this pass
                held_elsewhere.add(entity)
            mine.add(entity)
        return [r for r in taken if (r.aggregate, r.aggregate_id) not in held_elsewhere]

    def pass_once(self, stream: str) -> int:
        """Send up to ``rows_per_pass`` rows of the stream in one transaction; return how
        many were published."""
        tried: list[int] = []
        # SQLite has one write lock for the whole database: never hold it while SQS
        # answers. There the rows are read, sent, then marked in short transactions (a
        # row sent twice goes with the same deduplication id; consumers apply it once);
        # elsewhere the pass is one transaction holding its rows' locks.
        sqlite = connection.vendor == "sqlite"
        short = transaction.atomic if sqlite else nullcontext
        try:
            with nullcontext() if sqlite else transaction.atomic():
                with short():
                    events = self.pending(stream)
                if not events:
                    return 0
                tried = [e.pk for e in events]
                outcome = self._publish(stream, events)
                with short():
                    self._record(outcome)
        except Exception as exc:
            if tried:
                self._record_failed_pass(tried, exc)
            raise
        self.sent += len(outcome.published)
        self.parked += len(outcome.parked)
        return len(outcome.published) + len(outcome.parked)

    # -- one pass ------------------------------------------------------------------------

    def _publish(self, stream: str, events: list[OutboxEvent]) -> Outcome:
        """Send the pass's rows in waves of batches: no entity appears twice in a wave,
        so a wave's batches go out side by side (``sends`` at once) and each entity's
        changes still reach SQS in order, one wave after the other."""
        limit = self.limits.get(stream, MAX_MESSAGE_BYTES)
        outcome = Outcome()
        blocked: set[tuple[str, str]] = set()  # entities with a row refused for now
        waves: list[list[Batch]] = []
        placed: dict[tuple[str, str], int] = {}  # entity → the wave of its latest row
        for event in events:
            entity = (event.aggregate, event.aggregate_id)
            item = change(event)
            body = item.encode()
            length = size(body)
            if length > limit:
                self._park(
                    outcome, event,
                    f"message of {length:,} bytes is larger than the stream allows "
                    f"({limit:,} bytes, sync.{stream}.max_message_bytes); shorten the "
                    "entity or raise the limit (SQS allows 1 MiB), then emit it again",
                )  # fmt: skip
                continue
            number = placed.get(entity, -1) + 1
            placed[entity] = number
            if number == len(waves):
                waves.append([])
            wave = waves[number]
            if not wave or len(wave[-1].rows) == BATCH or wave[-1].bytes + length > limit:
                wave.append(Batch())
            wave[-1].add(event, item, body, length)
        for wave in waves:
            ready = [b.without(blocked) for b in wave]
            ready = [b for b in ready if b.rows]
            answers = self._send_all(stream, ready)
            for batch, answer in zip(ready, answers, strict=True):
                self._settle(batch, answer, outcome, blocked)
        return outcome

    def _send_all(self, stream: str, batches: list[Batch]) -> list[dict[str, Any]]:
        """SendMessageBatch for each batch, side by side; the first error raises once
        every call has ended (rows sent by the others go again with the same
        deduplication id)."""
        if len(batches) <= 1 or self.sends <= 1:
            return [self._call(stream, b) for b in batches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.sends, thread_name_prefix="outbox-send")
        futures = [self._pool.submit(self._call, stream, b) for b in batches]
        wait(futures)
        return [future.result() for future in futures]

    def _call(self, stream: str, batch: Batch) -> dict[str, Any]:
        entries = [item.entry(str(i), body) for i, (_, item, body) in enumerate(batch.rows)]
        try:
            answer: dict[str, Any] = self.client.send_message_batch(
                QueueUrl=self.queues[stream], Entries=entries
            )
        except ClientError as exc:
            if sqs.classify(exc) is not None:
                raise  # transient or configuration: the worker decides
            # refused whole for something in the request: find the entry to blame
            answer = self._one_by_one(stream, entries)
        return answer

    def _settle(
        self, batch: Batch, answer: dict[str, Any], outcome: Outcome, blocked: set[tuple[str, str]]
    ) -> None:
        if self.after_send is not None:
            self.after_send([event for event, _, _ in batch.rows])
        for entry in answer.get("Successful", []):
            outcome.published.append(batch.rows[int(entry["Id"])][0].pk)
        for failure in answer.get("Failed", []):
            event = batch.rows[int(failure["Id"])][0]
            error = f"{failure.get('Code')}: {failure.get('Message', '')}"
            if sqs.refused_for_good(failure):
                self._park(outcome, event, f"refused by SQS: {error}")
                continue
            event.attempts += 1
            event.last_error = error[:2000]
            delay = self.rng.uniform(0.5, 1.0) * min(RETRY_CAP, 2.0**event.attempts)
            event.retry_at = self.clock() + dt.timedelta(seconds=delay)
            outcome.waiting.append(event)
            blocked.add((event.aggregate, event.aggregate_id))
            log.warning(
                "outbox event %s (%s:%s) refused by SQS for now (%s); retried in %.0fs",
                event.pk, event.aggregate, event.aggregate_id, error, delay,
            )  # fmt: skip

    def _one_by_one(self, stream: str, entries: list[dict[str, str]]) -> dict[str, Any]:
        answer: dict[str, list[dict[str, Any]]] = {"Successful": [], "Failed": []}
        for entry in entries:
            single = {k: v for k, v in entry.items() if k != "Id"}
            try:
                self.client.send_message(QueueUrl=self.queues[stream], **single)
            except ClientError as exc:
                if sqs.classify(exc) is not None:
                    raise
                error = exc.response.get("Error", {})
                answer["Failed"].append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": error.get("Code"),
                     "Message": error.get("Message", str(exc))}
                )  # fmt: skip
            else:
                answer["Successful"].append({"Id": entry["Id"]})
        return answer

    def _park(self, outcome: Outcome, event: OutboxEvent, error: str) -> None:
        event.attempts += 1
        event.last_error = error[:2000]
        event.parked_at = self.clock()
        outcome.parked.append(event)
        log.error(
            "outbox event %s (%s:%s) set aside: %s", event.pk, event.aggregate,
            event.aggregate_id, error,
        )  # fmt: skip

    def _record(self, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.published:
            OutboxEvent.objects.filter(pk__in=outcome.published).update(
                published_at=now, retry_at=None
            )
        changed = outcome.waiting + outcome.parked
        if changed:
            OutboxEvent.objects.bulk_update(
                changed, ["attempts", "last_error", "retry_at", "parked_at"]
            )

    def _record_failed_pass(self, ids: list[int], exc: BaseException) -> None:
        """The pass's transaction rolled back: count the attempt on its rows anyway."""
        try:
            with transaction.atomic():
                OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).update(
                    attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
                )
        except Exception:  # the database itself is away: the worker retries the pass
            log.exception("outbox relay: could not record the failed attempt")

    # -- loops ---------------------------------------------------------------------------

    def drain(self, stream: str) -> int:
        total = 0
        while handled := self.pass_once(stream):
            total += handled
        return total

    def step(self, streams: list[str]) -> bool:
        """One pass over every stream; True when something was sent."""
        return sum(self.pass_once(stream) for stream in streams) > 0
