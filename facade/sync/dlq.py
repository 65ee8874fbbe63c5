"""A stream's dead-letter queue: what is in it, one message whole, and replaying.

Listing hides the messages for a moment while it reads them (SQS has no peek) and makes
them visible again right after. Replaying sends each chosen message back to the stream's
queue in its own message group, with a new deduplication id (SQS would drop a resend
with the old one inside its five-minute window), and deletes it from the DLQ only once
the send succeeded — nothing is lost if the replay stops half-way. The consumers'
version checks make a replay of something already applied harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

LIST_VISIBILITY = 30  # seconds the messages stay hidden while a listing reads them


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    group: str
    receives: int
    first_received: str | None
    sent: str | None
    body: str

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        try:
            parsed = json.loads(self.body)
        except ValueError:
            parsed = None
        data["event"] = parsed.get("event") if isinstance(parsed, dict) else None
        data["entity"] = (
            f"{parsed.get('aggregate')}:{parsed.get('id')}" if isinstance(parsed, dict) else None
        )
        return data


def _stamp(millis: str | None) -> str | None:
    if not millis:
        return None
    return dt.datetime.fromtimestamp(int(millis) / 1000, dt.UTC).isoformat()


def _receive_all(client: Any, url: str, limit: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        answer = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=LIST_VISIBILITY,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        fresh = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = message
    return list(seen.values())


def _release(client: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def _letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    return DeadLetter(
        message_id=message["MessageId"],
        group=attributes.get("MessageGroupId", ""),
        receives=int(attributes.get("ApproximateReceiveCount", 0)),
        first_received=_stamp(attributes.get("ApproximateFirstReceiveTimestamp")),
        sent=_stamp(attributes.get("SentTimestamp")),
        body=message["Body"],
    )


def list_letters(client: Any, dlq_url: str, limit: int = 1000) -> list[DeadLetter]:
    messages = _receive_all(client, dlq_url, limit)
    try:
        return [_letter(m) for m in messages]
    finally:
        _release(client, dlq_url, messages)


def replay(
    client: Any, dlq_url: str, queue_url: str, ids: set[str] | None = None, limit: int = 1000
) -> list[str]:
    """Send the chosen dead letters (all when ``ids`` is None) back; return their ids."""
    messages = _receive_all(client, dlq_url, limit)
    chosen = [m for m in messages if ids is None or m["MessageId"] in ids]
    others = [m for m in messages if m not in chosen]
    replayed: list[str] = []
    try:
        for message in chosen:
            group = message.get("Attributes", {}).get("MessageGroupId") or "replay"
            client.send_message(
                QueueUrl=queue_url,
                MessageBody=message["Body"],
                MessageGroupId=group,
                MessageDeduplicationId=f"replay-{uuid.uuid4().hex}",
            )
            client.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            replayed.append(message["MessageId"])
    finally:
        _release(client, dlq_url, others + [m for m in chosen if m["MessageId"] not in replayed])
    return replayed
