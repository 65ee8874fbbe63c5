"""In-memory stand-ins for the SQS calls the sync makes, with the behaviour under test
made explicit (FIFO groups, receive counts, the redrive to a DLQ, AWS's rules on message
contents), so that each test is deterministic and needs no server."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# SendMessage: "The following Unicode characters are allowed: #x9 | #xA | #xD | #x20 to
# #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF. Any characters not included in this
# list will be rejected." (SQS API reference, SendMessage, MessageBody)
_REFUSED = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def client_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@dataclass
class Message:
    id: str
    body: str
    group: str
    receives: int = 0
    in_flight: bool = False
    receipt: str = ""


@dataclass
class FifoQueue:
    """One FIFO queue and its DLQ: a group's messages are handed out in order and none
    while an earlier one of the group is in flight; a message received ``max_receives``
    times and received again moves to the DLQ (SQS's redrive policy). Time is not
    modelled: a visibility change makes a message visible again at once (as if its
    timeout passed)."""

    max_receives: int = 5
    messages: list[Message] = field(default_factory=list)
    dead: list[Message] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    visibility_changes: list[tuple[str, int]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    # -- what a sender does -----------------------------------------------------------
    def put(self, body: str, group: str) -> str:
        message = Message(f"m{next(self._ids)}", body, group)
        self.messages.append(message)
        return message.id

    # -- the SQS API a consumer calls ------------------------------------------------
    def receive_message(
        self, QueueUrl: str, MaxNumberOfMessages: int = 1, **_: Any
    ) -> dict[str, Any]:
        busy = {m.group for m in self.messages if m.in_flight}
        handed: list[dict[str, Any]] = []
        for message in list(self.messages):
            if len(handed) >= MaxNumberOfMessages:
                break
            if message.in_flight or message.group in busy:
                # FIFO: nothing of a group while an earlier one is in flight; and the
                # group's later messages only behind its earlier ones
                busy.add(message.group)
                continue
            if message.receives >= self.max_receives:
                self.messages.remove(message)
                self.dead.append(message)
                continue
            message.receives += 1
            message.in_flight = True
            message.receipt = f"{message.id}-r{message.receives}"
            handed.append(
                {
                    "MessageId": message.id,
                    "ReceiptHandle": message.receipt,
                    "Body": message.body,
                    "Attributes": {
                        "ApproximateReceiveCount": str(message.receives),
                        "MessageGroupId": message.group,
                    },
                }
            )
        return {"Messages": handed} if handed else {}

    def _by_receipt(self, receipt: str) -> Message:
        return next(m for m in self.messages if m.receipt == receipt)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        for entry in Entries:
            message = self._by_receipt(entry["ReceiptHandle"])
            self.messages.remove(message)
            self.deleted.append(message.id)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(
        self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int
    ) -> dict[str, Any]:
        message = self._by_receipt(ReceiptHandle)
        self.visibility_changes.append((message.id, VisibilityTimeout))
        message.in_flight = False
        return {}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        visible = sum(not m.in_flight for m in self.messages)
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(visible),
                "ApproximateNumberOfMessagesNotVisible": str(len(self.messages) - visible),
            }
        }


@dataclass
class Sender:
    """SendMessageBatch / SendMessage into a ``FifoQueue`` as SQS judges them: a body
    with a character SQS does not allow is refused (per entry in a batch, with
    ``SenderFault``)."""

    queue: FifoQueue = field(default_factory=FifoQueue)
    calls: int = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        answer: dict[str, list[dict[str, Any]]] = {"Successful": [], "Failed": []}
        for entry in Entries:
            if _REFUSED.search(entry["MessageBody"]):
                answer["Failed"].append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "InvalidMessageContents",
                        "Message": "Invalid binary character was found in the message body",
                    }
                )
                continue
            message_id = self.queue.put(entry["MessageBody"], entry["MessageGroupId"])
            answer["Successful"].append({"Id": entry["Id"], "MessageId": message_id})
        return answer

    def send_message(self, QueueUrl: str, **entry: str) -> dict[str, Any]:
        self.calls += 1
        if _REFUSED.search(entry["MessageBody"]):
            raise client_error("InvalidMessageContents", 400, "SendMessage")
        return {"MessageId": self.queue.put(entry["MessageBody"], entry["MessageGroupId"])}


@dataclass
class Refusing:
    """Every send refused with one error (a queue whose KMS key is disabled, …)."""

    code: str
    status: int = 400
    calls: int = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        raise client_error(self.code, self.status, "SendMessageBatch")

    def send_message(self, QueueUrl: str, **entry: str) -> dict[str, Any]:
        self.calls += 1
        raise client_error(self.code, self.status, "SendMessage")
