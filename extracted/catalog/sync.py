"""Applying the monolith's catalog events to the catalog service's database.

Each message carries one entity's full state (or its deletion) and a version (the
monolith's outbox id). ``apply`` writes it in one transaction with the entity's
``SyncState``, and only if the version is newer than the one applied: a duplicate, a
redelivery after a visibility timeout, or an event overtaken by a newer one changes
nothing. The worker (``manage.py sync_consumer``) long-polls the stream's queue, deletes
what it applied, and leaves what failed for SQS to deliver again — after
``max_receives`` failures it moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import EndpointConnectionError
from django.apps import apps
from django.db import connection, models, transaction

from extracted.catalog.models import SyncState

log = logging.getLogger(__name__)
APPLIES_TO = frozenset({"catalog.Category", "catalog.Product", "catalog.StockLevel"})


class Rejected(ValueError):
    """A message this consumer can never apply (malformed, or an unknown entity)."""


def _model(label: str) -> type[models.Model]:
    if label not in APPLIES_TO:
        raise Rejected(f"unknown aggregate {label!r}")
    return apps.get_model(label)


def _row(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    columns = {f.attname for f in model._meta.concrete_fields}
    return {k: v for k, v in data.items() if k in columns}


def apply(body: dict[str, Any]) -> bool:
    """Apply one event; False when it was already applied or is older than the state."""
    try:
        label, object_id, version = body["aggregate"], str(body["id"]), int(body["version"])
        kind, data = body["kind"], body.get("data")
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(f"malformed event: {exc!r}") from exc
    model = _model(label)
    if kind not in ("upsert", "delete") or (kind == "upsert" and not isinstance(data, dict)):
        raise Rejected(f"event kind {kind!r} with data {type(data).__name__}")
    with transaction.atomic():
        state = (
            SyncState._default_manager.select_for_update()
            .filter(aggregate=label, object_id=object_id)
            .first()
        )
        if state is not None and state.version >= version:
            return False
        pk = model._meta.pk
        assert pk is not None
        if kind == "delete":
            model._default_manager.filter(pk=object_id).delete()
        else:
            assert isinstance(data, dict)
            row = _row(model, data)
            row.pop(pk.attname, None)
            model._default_manager.update_or_create(pk=object_id, defaults=row)
        SyncState._default_manager.update_or_create(
            aggregate=label,
            object_id=object_id,
            defaults={"version": version, "deleted": kind == "delete"},
        )
        # foreign keys are checked at commit by default; check them now, so that an
        # entity whose parent has not arrived fails alone, inside its savepoint
        connection.check_constraints(table_names=[model._meta.db_table])
    return True


@dataclass
class Consumer:
    client: Any  # boto3 SQS client
    queue_url: str
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
        with transaction.atomic():
            for message in messages:
                try:
                    applied = apply(json.loads(message["Body"]))  # its own savepoint
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
