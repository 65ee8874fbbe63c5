"""A Lambda function's SQS event source, played locally:
``python -m facade.sync.event_source --stream NAME module:handler``.

On AWS an event source mapping long-polls the queue, hands the function batches of up to
10 records as an SQS event, and — with ``ReportBatchItemFailures`` — deletes every record
but those the function lists in ``batchItemFailures``; those become visible again after
the queue's visibility timeout, and after ``maxReceiveCount`` receives SQS moves them to
the dead-letter queue. This module does the same against the local SQS stand-in, with
events shaped as AWS sends them, so the function's code runs unchanged here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facade.sync import sqs

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], Any]
ATTRIBUTES = [
    "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageGroupId", "MessageDeduplicationId",
]  # fmt: skip


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda receives for these messages (as ReceiveMessage returned them)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class _Context:
    """The few context attributes handlers and powertools read."""

    function_name = "local-event-source"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:local-event-source"
    memory_limit_in_mb = 128
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class EventSource:
    client: Any  # boto3 SQS client
    queue_url: str
    handler: Handler
    batch_size: int = 10
    wait: int = 5
    backoff: int | None = None  # seconds before a failed record is retried; None: the queue's
    delivered: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.queue_arn = str(
            self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        )
        self.region = str(self.client.meta.region_name or "us-east-1")

    def poll(self) -> int:
        """One receive and one invocation; return how many records it carried."""
        messages = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait,
            AttributeNames=ATTRIBUTES,
        ).get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self.queue_arn, self.region)
        try:
            answer = self.handler(event, _Context())
            failures = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        except Exception:  # the whole batch failed: every record comes back
            log.exception("the function failed on a batch of %d", len(messages))
            failures = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failures]
        if done:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ]
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for message in messages:
            if message["MessageId"] in failures and self.backoff is not None:
                self.client.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self.backoff,
                )
        self.delivered += len(done)
        self.failed += len(failures)
        return len(messages)

    def empty(self) -> bool:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not any(int(v) for v in attributes.values())

    def drain(self, stop: Callable[[], bool]) -> None:
        """Deliver until the queue is empty, in flight included."""
        while not stop():
            if not self.poll() and self.empty():
                return


def load_handler(spec: str) -> Handler:
    module, _, name = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name or "lambda_handler")
    return handler


def main(argv: list[str] | None = None) -> int:
    from facade.routing.loader import load_table
    from facade.sync.consumer import stop_on_signals
    from facade.sync.queues import wait_for_queue

    parser = argparse.ArgumentParser(prog="python -m facade.sync.event_source", description=__doc__)
    parser.add_argument("handler", help="the function's SQS handler, module:function")
    parser.add_argument("--stream", required=True, help="routing.yaml's sync stream")
    parser.add_argument("--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml"))
    parser.add_argument("--batch-size", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--wait", type=int, default=5, help="long-poll seconds (1-20)")
    parser.add_argument("--backoff", type=int, default=None, help="retry a failure after N s")
    parser.add_argument("--drain", action="store_true", help="stop once the queue is empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    stream = load_table(args.routing).stream(args.stream)
    try:
        client = sqs.client()
        url = wait_for_queue(client, stream.queue)
    except sqs.ConfigurationProblem as exc:
        print(f"{stream.name} event source: {exc}", file=sys.stderr)
        return 2
    source = EventSource(
        client, url, load_handler(args.handler),
        batch_size=args.batch_size, wait=args.wait, backoff=args.backoff,
    )  # fmt: skip
    stop = stop_on_signals()
    print(f"{stream.name} event source: {stream.queue} → {args.handler}", flush=True)
    try:
        if args.drain:
            source.drain(stop.is_set)
        else:
            sqs.run_worker(f"{stream.name} event source", lambda: source.poll() > 0, stop, idle=0)
    except sqs.ConfigurationProblem as exc:
        print(f"{stream.name} event source: {exc}", file=sys.stderr)
        return 2
    print(
        f"{stream.name} event source stopped: {source.delivered} delivered, {source.failed} failed",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
