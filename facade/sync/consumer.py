"""Consuming a sync stream's SQS queue: the loop every consumer shares.

Each receive (up to 10 messages) runs inside ``batch()`` — a database transaction, so
the batch costs one commit — and each message's ``apply`` inside its own savepoint, so a
message that fails rolls back alone. Applied (or already applied) messages are deleted;
a failing one becomes visible again after a short backoff (an entity whose parent has not
arrived yet), and after the queue's ``max_receives`` SQS moves it to the dead-letter
queue; a ``Rejected`` one (it can never apply) is made visible at once, to reach the DLQ
without waiting.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

log = logging.getLogger(__name__)


class Rejected(ValueError):
    """A message its consumer can never apply (malformed, or an unknown entity)."""


@dataclass
class Consumer:
    client: Any  # boto3 SQS client
    queue_url: str
    apply: Callable[[dict[str, Any]], bool]  # True: applied, False: already applied
    batch: Callable[[], AbstractContextManager[Any]] = nullcontext  # one receive's transaction
    wait: int = 5  # long-poll seconds
    applied: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)

    def poll(self) -> int:
        """One receive of up to 10 messages; return how many were handled."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = answer.get("Messages", [])
        done = []
        # one transaction per receive, a savepoint per message: a message that fails
        # rolls back alone, and the batch costs one commit
        with self.batch():
            for message in messages:
                try:
                    applied = self.apply(json.loads(message["Body"]))  # its own savepoint
                except Rejected as exc:
                    self.failed += 1
                    log.error(
                        "event %s can never apply, to the DLQ with it: %s",
                        message["MessageId"],
                        exc,
                    )
                    self._retry_in(message, 0)
                    continue
                except Exception as exc:
                    self.failed += 1
                    receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                    log.warning(
                        "event %s failed (receive %d): %r", message["MessageId"], receives, exc
                    )
                    # back off a little, instead of the whole visibility timeout, for entities
                    # whose parent has not arrived yet; poison keeps failing into the DLQ
                    self._retry_in(message, min(2 * receives, 30))
                    continue
                self.applied += applied
                self.skipped += not applied
                done.append(message)
        if done:
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

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

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            try:
                self.poll()
            except EndpointConnectionError as exc:
                log.warning("sync consumer: SQS unreachable (%s); retrying", exc)
                time.sleep(1)
            except Exception:
                log.exception("sync consumer: receiving failed; retrying")
                time.sleep(1)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: workers finish the batch in hand, then stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def add_arguments(parser: argparse.ArgumentParser, stream: str) -> None:
    """The options every consumer command takes."""
    parser.add_argument("--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml"))
    parser.add_argument("--stream", default=stream)
    parser.add_argument("--wait", type=int, default=5, help="long-poll seconds (1-20)")
    parser.add_argument(
        "--drain", action="store_true", help="stop once the queue is empty, in flight included"
    )


def consume(
    options: Mapping[str, Any],
    apply: Callable[[dict[str, Any]], bool],
    batch: Callable[[], AbstractContextManager[Any]],
    say: Callable[[str], None],
    into: str,
) -> Consumer:
    """Consume routing.yaml's stream ``options['stream']`` until stopped (or drained)."""
    from facade.routing.loader import load_table
    from facade.sync.queues import wait_for_queue

    stream = load_table(options["routing"]).stream(options["stream"])
    client = boto3.client("sqs")
    consumer = Consumer(
        client, wait_for_queue(client, stream.queue), apply, batch, wait=options["wait"]
    )
    stop = stop_on_signals()
    say(f"{stream.name} consumer: {stream.queue} → {into}")
    if options["drain"]:
        consumer.drain(stop.is_set)
    else:
        consumer.run(stop.is_set)
    say(
        f"{stream.name} consumer stopped: {consumer.applied} applied, {consumer.skipped} "
        f"already applied, {consumer.failed} failed"
    )
    return consumer
