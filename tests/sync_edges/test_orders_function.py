"""Edge cases of the orders function's side of the sync (extracted/orders/): its store on the
DynamoDB stand-in, its relay and its SQS handler."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import boto3
import pytest

from extracted.orders import relay as orders_relay
from extracted.orders.store import OrderStore, create_table, stamp
from facade import aws_local
from facade.sync import sqs
from facade.sync.conflict import Stamp
from tests.servers import orders_store
from tests.sync_edges.fakes import Refusing

TO_LAMBDA = "orders-to-lambda"


@pytest.fixture
def store(aws_endpoints: aws_local.Endpoints) -> OrderStore:
    client = boto3.client("dynamodb", endpoint_url=aws_endpoints.dynamodb, **aws_local.CREDENTIALS)
    table = f"edges-{uuid.uuid4().hex[:8]}"
    create_table(client, table)
    return orders_store(table, client)


def _state(order_id: int, status: str = "placed") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": order_id, "customer": 7, "status": status, "currency": "EUR", "total": "10.00",
        "lines": [{"product": 1, "sku": "A", "quantity": 1, "unit_price": "10.00",
                   "line_total": "10.00"}],
        "placed_at": now, "paid_at": now if status != "placed" else None,
        "shipped_at": None, "cancelled_at": now if status == "cancelled" else None,
        "updated_at": now, "reservation": None,
    }  # fmt: skip


def _pay_here(store: OrderStore, order_id: int) -> dict[str, Any]:
    now = stamp(dt.datetime.now(dt.UTC))
    return store.update_status(
        order_id, allowed_from=["placed"], status="paid",
        changes={"paid_at": now, "updated_at": now},
    )  # fmt: skip


def test_a_conflict_is_counted_even_when_the_function_dies_between_applying_and_counting(
    store: OrderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A monolith order is paid on the function while the monolith cancels it: the
    cancellation wins and the function, whose payment lost, must count the conflict
    once. apply_remote writes the winning state first and the CONFLICT# item and the
    counter after, in separate calls: a function that times out or is throttled between
    them leaves the order applied and the conflict uncounted, and the redelivered message
    is then a duplicate — the conflict is never counted (on the monolith both are one
    transaction)."""
    order_id = 42
    placed = Stamp(0, 1, "monolith")
    store.apply_remote(_state(order_id), placed, None, stream=TO_LAMBDA)
    _pay_here(store, order_id)  # the function's own change, concurrent with the cancel
    cancelled = Stamp(3, 2, "monolith")

    real = store._keep_conflict
    calls = {"n": 0}

    def dies_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("Task timed out after 30.00 seconds")
        real(*args, **kwargs)

    monkeypatch.setattr(store, "_keep_conflict", dies_once)
    with pytest.raises(TimeoutError):
        store.apply_remote(_state(order_id, "cancelled"), cancelled, placed, stream=TO_LAMBDA)
    # SQS gives the message back; the function applies it again
    store.apply_remote(_state(order_id, "cancelled"), cancelled, placed, stream=TO_LAMBDA)

    held = store.get(order_id)
    assert held is not None
    assert held["status"] == "cancelled"
    assert store.conflicts(TO_LAMBDA) == 1


@pytest.mark.parametrize("code", ["KmsDisabled", "KmsNotFound"])
def test_the_orders_relay_stops_on_a_kms_configuration_error_instead_of_parking_orders(
    store: OrderStore, code: str
) -> None:
    """As the monolith's relay: a queue whose KMS key is disabled or gone refuses every
    send with 400 Kms*; the orders relay must stop with a message saying what to fix,
    not set every order aside."""
    order_id = 43
    store.apply_remote(_state(order_id), Stamp(0, 1, "monolith"), None, stream=TO_LAMBDA)
    _pay_here(store, order_id)
    assert store.pending()
    outcome: BaseException | None = None
    try:
        orders_relay.publish_pending(store, Refusing(code), "https://sqs.example/q.fifo")
    except Exception as exc:
        outcome = exc
    # the worker (sqs.run_worker) stops with exit 2 only on what classify() calls
    # a configuration problem
    assert outcome is not None, "no error reached the worker"
    assert sqs.classify(outcome) == "configuration", repr(outcome)
    assert store.parked() == [], "the order was set aside as if SQS had refused it for good"
