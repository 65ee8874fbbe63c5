"""Consuming a sync stream's SQS queue: the loop every consumer shares.

Each receive (up to 10 messages) is decoded (``facade.sync.messages``) and handed to
the side's ``apply`` as one batch, which returns an outcome per change: applied (or
already applied) messages are deleted in one call; a failing one becomes visible again
after a short backoff (an entity whose parent has not arrived yet), and after the
queue's ``max_receives`` SQS moves it to the dead-letter queue; a ``Rejected`` one (it
can never apply: malformed, or an entity nobody applies) is made visible at once, to
reach the DLQ without waiting. How a batch is applied — one transaction for copies,
one per change for two-way entities — is the applying side's business
(``facade.sync.django.inbox``).

The worker (``consume``) runs until SIGTERM/SIGINT, retrying what SQS or the database
refuse for now, and stops with a message saying what to fix when the configuration is
wrong (``facade.sync.sqs.run_worker``). It runs ``--pollers`` receive loops side by
side (default 4), so that one loop's database work overlaps another's SQS calls. Order
per entity still holds: a FIFO queue hands out no message of a group while an earlier
one of that group is in flight.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facade.sync.messages import BATCH, Change, Malformed, decode

log = logging.getLogger(__name__)
Outcome = bool | BaseException
POLLERS = 4
ApplyBatch = Callable[[Sequence[Change]], Sequence[Outcome]]


class Rejected(ValueError):
    """A message its consumer can never apply (malformed, or an unknown entity)."""


@dataclass
class Consumer:
    client: Any  # SQS client (facade.sync.sqs.client)
    queue_url: str
    apply: ApplyBatch  # an outcome per change: True applied, False already applied
    wait: int = 5  # long-poll seconds
    ready: Callable[[], None] | None = None  # raises while the applying side cannot apply
    applied: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)
    held: int = field(default=0, init=False)  # held back behind a failed one of their group

    def poll(self) -> int:
        """One receive of up to 10 messages; return how many were handled.

        A receive may hold several messages of one group (one entity), in order: they
        are applied in rounds, each round at most one message per group, and once a
        message fails the later ones of its group are held back with it — an entity's
        changes never apply out of order. ``ready`` is asked first: while the applying
        side's database is away nothing is received (no receive counts against a message
        for an outage); an exception from ``apply`` (the database went away meanwhile)
        makes the receive's unapplied messages visible again and ends the poll."""
        if self.ready is not None:
            self.ready()
        answer = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=self.wait,
            AttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        failed: dict[str, int] = {}  # group → seconds until its messages come back
        waiting: list[tuple[dict[str, Any], Change, str]] = []
        for message in messages:
            group = str(message.get("Attributes", {}).get("MessageGroupId", ""))
            try:
                change = decode(message["Body"])
            except Malformed as exc:
                failed[group or message["MessageId"]] = self._failed(message, Rejected(str(exc)))
                continue
            waiting.append((message, change, group or change.group_id))
        done: list[dict[str, Any]] = []
        while waiting:
            round_: list[tuple[dict[str, Any], Change, str]] = []
            later: list[tuple[dict[str, Any], Change, str]] = []
            for item in waiting:
                message, _, group = item
                if group in failed:
                    self.held += 1
                    self._retry_in(message, failed[group])  # comes back after the failed one
                elif any(group == g for _, _, g in round_):
                    later.append(item)
                else:
                    round_.append(item)
            try:
                outcomes = list(self.apply([c for _, c, _ in round_])) if round_ else []
            except Exception:
                self._delete(done)
                for message, _, _ in round_ + later:
                    self._retry_in(message, 0)
                raise
            for (message, _, group), outcome in zip(round_, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    failed[group] = self._failed(message, outcome)
                    continue
                self.applied += outcome
                self.skipped += not outcome
                done.append(message)
            waiting = later
        self._delete(done)
        return len(messages)

    def _delete(self, done: list[dict[str, Any]]) -> None:
        if done:
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )

    def _failed(self, message: dict[str, Any], error: BaseException) -> int:
        """Count a failed message and make it visible again soon; return after how many
        seconds."""
        self.failed += 1
        if isinstance(error, Rejected):
            log.error(
                "event %s can never apply, to the DLQ with it: %s", message["MessageId"], error
            )
            self._retry_in(message, 0)
            return 0
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        log.warning("event %s failed (receive %d): %r", message["MessageId"], receives, error)
        # back off a little, instead of the whole visibility timeout, for entities whose
        # parent has not arrived yet; poison keeps failing into the DLQ
        delay = min(2 * receives, 30)
        self._retry_in(message, delay)
        return delay

    def _retry_in(self, message: dict[str, Any], seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=seconds,
        )

    def empty(self) -> bool:
        """Nothing visible and nothing in flight (a failed message waiting to be retried
        counts as in flight)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not any(int(v) for v in attributes.values())

    def drain(self, stop: Callable[[], bool]) -> None:
        """Apply until the queue is empty, retries and moves to the DLQ included."""
        while not stop():
            if not self.poll() and self.empty():
                return


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: workers finish the batch in hand, then stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def add_arguments(parser: argparse.ArgumentParser, stream: str | None = None) -> None:
    """The options every consumer command takes."""
    parser.add_argument("--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml"))
    parser.add_argument("--stream", default=stream, required=stream is None)
    parser.add_argument("--wait", type=int, default=5, help="long-poll seconds (1-20)")
    parser.add_argument(
        "--drain", action="store_true", help="stop once the queue is empty, in flight included"
    )
    parser.add_argument(
        "--pollers", type=int, default=POLLERS, help="receive loops side by side (1-16)"
    )


def consume(
    options: Mapping[str, Any],
    apply: ApplyBatch,
    say: Callable[[str], None],
    into: str,
    ready: Callable[[], None] | None = None,
) -> Consumer:
    """Consume routing.yaml's stream ``options['stream']`` until stopped (or drained)."""
    from facade.routing.loader import load_table
    from facade.sync import sqs
    from facade.sync.queues import wait_for_queue

    stream = load_table(options["routing"]).stream(options["stream"])
    pollers = int(options.get("pollers") or 1)
    if not 1 <= pollers <= 16:
        raise sqs.ConfigurationProblem(f"--pollers {pollers}: between 1 and 16")
    client = sqs.client()  # thread-safe; its pool holds 10 connections
    url = wait_for_queue(client, stream.queue)
    loops = [
        Consumer(client, url, apply, wait=options["wait"], ready=ready) for _ in range(pollers)
    ]
    stop = stop_on_signals()
    say(f"{stream.name} consumer: {stream.queue} → {into} ({pollers} pollers)")
    failures: list[BaseException] = []

    def run(consumer: Consumer) -> None:
        try:
            if options["drain"]:
                consumer.drain(stop.is_set)
            else:
                name = f"{stream.name} consumer"
                sqs.run_worker(name, lambda: consumer.poll() > 0, stop, idle=0)
        except BaseException as exc:  # a configuration problem: every loop stops
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in loops[1:]]
    for thread in threads:
        thread.start()
    run(loops[0])
    for thread in threads:
        thread.join()
    total = Consumer(client, url, apply)
    for consumer in loops:
        total.applied += consumer.applied
        total.skipped += consumer.skipped
        total.failed += consumer.failed
    say(
        f"{stream.name} consumer stopped: {total.applied} applied, {total.skipped} "
        f"already applied, {total.failed} failed"
    )
    if failures:
        raise failures[0]
    return total
