"""The data sync's queues, created from routing.yaml's ``sync:`` block.

Each stream gets a FIFO queue and a FIFO dead-letter queue; the queue's redrive policy
moves a message there after ``max_receives`` receives. Creating is idempotent (SQS's
CreateQueue returns the existing queue when the attributes match), so the same call
serves the local stand-ins at every start and a first deployment.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from facade.routing.loader import load_table
from facade.routing.model import SyncStream
from facade.sync import sqs


def queue_attributes(stream: SyncStream, dlq_arn: str) -> dict[str, str]:
    return {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",  # the outbox event id is the deduplication id
        "VisibilityTimeout": str(stream.visibility_timeout),
        "MaximumMessageSize": str(stream.max_message_bytes),
        "MessageRetentionPeriod": str(stream.retention),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": stream.max_receives}
        ),
    }


def create_queues(client: Any, stream: SyncStream) -> tuple[str, str]:
    """Create (or find) the stream's queue and DLQ; return their URLs."""
    dlq_url = client.create_queue(
        QueueName=stream.dlq,
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(stream.dlq_retention)},
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = client.create_queue(QueueName=stream.queue, Attributes=queue_attributes(stream, dlq_arn))[
        "QueueUrl"
    ]
    return str(url), str(dlq_url)


def wait_for_queue(client: Any, name: str, timeout: float = 120.0) -> str:
    """The queue's URL, waiting for it to exist (the stand-ins may still be starting);
    raises ``ConfigurationProblem`` when it does not appear in time, or at once when the
    credentials are refused."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(client.get_queue_url(QueueName=name)["QueueUrl"])
        except (ClientError, BotoCoreError) as exc:
            missing = (
                isinstance(exc, ClientError)
                and "NonExistentQueue" in str(exc.response.get("Error", {}).get("Code", ""))
            ) or "QueueDoesNotExist" in type(exc).__name__
            if sqs.classify(exc) == "configuration" and not missing:
                raise sqs.ConfigurationProblem(f"queue {name}: {sqs.explain(exc)}") from exc
            if time.monotonic() > deadline:
                raise sqs.ConfigurationProblem(
                    f"queue {name} did not appear in {timeout:.0f}s ({exc}): create it "
                    "(`strangler render sam`, or the local stand-ins' set-up) or fix the "
                    "stream's `queue` in routing.yaml"
                ) from exc
            time.sleep(0.5)


def create_local_queues() -> None:
    """Set-up hook of the local AWS stand-ins: the queues of ``$STRANGLER_ROUTING``."""
    table = load_table(os.environ.get("STRANGLER_ROUTING", "routing.yaml"))
    client = sqs.client()
    for stream in table.sync:
        create_queues(client, stream)
