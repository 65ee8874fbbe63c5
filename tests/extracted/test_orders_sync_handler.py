"""The orders function's SQS handler fails only the message group of a record it cannot
apply: the records of other orders in the same batch are applied and done with, and
the failed order's later records wait behind it (FIFO), as Lambda's partial batch
response lets them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from extracted.orders import sync as lambda_sync
from facade import aws_local
from facade.sync.event_source import sqs_event
from facade.sync.messages import Change
from tests.servers import ORDERS_PAIR, orders_store


def _order(order_id: int, status: str) -> dict[str, Any]:
    return {
        "id": order_id, "customer": 1, "status": status, "currency": "EUR", "total": "10.00",
        "lines": [{"product": 1, "sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
        "placed_at": "2026-01-01T10:00:00+00:00", "updated_at": "2026-01-01T10:00:00+00:00",
    }  # fmt: skip


def _message(body: str, group: str, n: int) -> dict[str, Any]:
    return {
        "MessageId": uuid.uuid4().hex, "ReceiptHandle": uuid.uuid4().hex, "Body": body,
        "Attributes": {"MessageGroupId": group, "SequenceNumber": str(n),
                       "MessageDeduplicationId": uuid.uuid4().hex,
                       "ApproximateReceiveCount": "1"},
    }  # fmt: skip


def _change(order_id: int, status: str, version: int) -> str:
    assert ORDERS_PAIR.lifecycle is not None
    state = _order(order_id, status)
    return Change(
        stream=ORDERS_PAIR.streams[0], aggregate="orders.Order", id=str(order_id),
        kind="upsert", data=state, version=version, origin="monolith",
        event=uuid.uuid4().hex, rank=ORDERS_PAIR.lifecycle.rank(state), base=None,
    ).encode()  # fmt: skip


def test_a_poison_record_fails_its_own_group_and_no_other(
    orders_table: tuple[aws_local.Endpoints, str],
) -> None:
    endpoints, table = orders_table
    client = boto3.client("dynamodb", endpoint_url=endpoints.dynamodb, **aws_local.CREDENTIALS)
    store = orders_store(table, client)
    poisoned, healthy = 71_001, 71_002
    poison = json.dumps({"aggregate": "orders.Order", "id": str(poisoned), "kind": "upsert"})
    messages = [
        _message(_change(healthy, "placed", 1), f"orders.Order:{healthy}", 1),
        _message(poison, f"orders.Order:{poisoned}", 2),
        _message(_change(poisoned, "paid", 2), f"orders.Order:{poisoned}", 3),
        _message(_change(healthy, "paid", 2), f"orders.Order:{healthy}", 4),
    ]
    lambda_sync.use_store(store)
    try:
        event = sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:tl.fifo", "us-east-1")
        answer = lambda_sync.lambda_handler(event, None)
    finally:
        lambda_sync.use_store(None)
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert failed == [messages[1]["MessageId"], messages[2]["MessageId"]]
    held = store.get(healthy)
    assert held is not None
    assert held["status"] == "paid"  # the healthy order's records after the poison applied
    assert store.get(poisoned) is None  # its later record waits behind the poison
