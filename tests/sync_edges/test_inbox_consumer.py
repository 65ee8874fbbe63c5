"""Edge cases of the monolith's consumer loop (facade/sync/consumer.py) and inbox
(facade/sync/django/inbox.py) for the orders the Lambda changes (orders-to-monolith).

The queue is an in-memory FIFO queue with SQS's receive counts and redrive
(tests/sync_edges/fakes.py); the inbox and the database are real."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import OperationalError, connection

from facade.sync.conflict import Stamp
from facade.sync.consumer import Consumer
from facade.sync.django import inbox
from facade.sync.django.models import EntityVersion, SyncConflict
from facade.sync.messages import Change
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from monolith.orders.sync import order_state
from tests.monolith.conftest import make_product
from tests.servers import ORDERS_PAIR
from tests.sync_edges.fakes import FifoQueue

pytestmark = pytest.mark.django_db(transaction=True)
STREAM = "orders-to-monolith"
LAMBDA = "orders"  # the orders function's origin (routing.yaml's backend name)


def _placed_here(buyer: Customer) -> Order:
    product = make_product("OUTAGE", 100)
    return services.place_order(buyer, [services.LineRequest(product.pk, 1)])


def _lambda_change(order: Order, status: str, version: int, base: Stamp | None) -> Change:
    """The Lambda's state of ``order`` after it moved it to ``status``, as its relay sends
    it (facade/sync/messages.py)."""
    rank = ORDERS_PAIR.lifecycle.rank({"status": status}) if ORDERS_PAIR.lifecycle else 0
    state = order_state(order)
    now = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=version)).isoformat()
    state.update(status=status, updated_at=now, **{f"{status}_at": now})
    return Change(
        stream=STREAM, aggregate="orders.Order", id=str(order.pk), kind="upsert", data=state,
        version=version, origin=LAMBDA, event=f"orders.Order:{order.pk}:{version}",
        at=now, rank=rank, base=base,
    )  # fmt: skip


def _held(order: Order) -> Stamp:
    row = EntityVersion.objects.get(aggregate="orders.Order", object_id=str(order.pk))
    return Stamp(row.rank, row.version, row.origin)


def test_a_database_outage_does_not_send_healthy_changes_to_the_dlq(
    buyer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away (restart, failover) while the consumer runs. Nothing is
    wrong with the messages: they must wait in the queue (the worker backs off, as it
    does for SQS outages) and apply once the database is back. The inbox turns the
    outage into a per-message failure instead, the consumer makes the message visible
    again after 2·n s, and after max_receives receives (2+4+6+8 s ≈ 20 s of outage with
    routing.yaml's max_receives: 5) SQS moves the healthy change to the DLQ."""
    order = _placed_here(buyer)
    paid = _lambda_change(order, "paid", 2, _held(order))
    queue = FifoQueue(max_receives=5)
    queue.put(paid.encode(), paid.group_id)
    consumer = Consumer(queue, "q", inbox.apply_batch, wait=0, ready=inbox.ready)

    def gone(*_: Any, **__: Any) -> Any:  # every statement, as when the server is away
        database: Any = connection.Database  # type: ignore[attr-defined]
        raise database.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "create_cursor", gone)
    for _ in range(6):  # the outage outlasts a few receives
        try:
            consumer.poll()
        except Exception:  # noqa: S112 - a worker would back off and poll again
            continue
    monkeypatch.undo()

    assert queue.dead == [], (
        f"a healthy change went to the DLQ during the outage (visibility changes: "
        f"{queue.visibility_changes})"
    )
    while consumer.poll():
        pass
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_a_failed_change_holds_back_the_later_changes_of_its_order(buyer: Customer) -> None:
    """FIFO order per entity: when the Lambda's change of an order fails (a deadlock
    victim five times over, a lock timeout, a brief outage), the later changes of that
    order received in the same batch must wait behind it — the Lambda's handler reports
    the rest of the group failed (SqsFifoPartialProcessor, skip_group_on_error). The
    monolith's consumer applies and deletes them anyway; the earlier change is then
    applied after them (and dropped as a duplicate), and the conflict rule, seeing a
    change whose base is a state it has never held, records a conflict that never
    happened."""
    order = _placed_here(buyer)
    placed = _held(order)  # the monolith's own state, which the Lambda had
    paid = _lambda_change(order, "paid", 2, placed)  # made on the state the Lambda had
    shipped = _lambda_change(order, "shipped", 3, paid.stamp)  # made after the payment
    assert shipped.data is not None
    assert paid.data is not None
    shipped.data["paid_at"] = paid.data["paid_at"]
    queue = FifoQueue()
    for change in (paid, shipped):
        queue.put(change.encode(), change.group_id)
    failures = {paid.event: 1}

    def apply(changes: Sequence[Change]) -> list[Any]:
        outcomes: list[Any] = []
        for change in changes:
            if failures.get(change.event):
                failures[change.event] -= 1
                outcomes.append(OperationalError("deadlock detected"))
            else:
                outcomes.extend(inbox.apply_batch([change]))
        return outcomes

    consumer = Consumer(queue, "q", apply, wait=0)
    consumer.poll()
    shipped_first = [m.id for m in queue.messages] == ["m1"]  # the shipment already gone
    while consumer.poll():
        pass

    assert Order.objects.get(pk=order.pk).status == "shipped"
    conflicts = list(SyncConflict.objects.values_list("lost", "won"))
    assert conflicts == [], (
        f"the shipment was applied before the payment it followed "
        f"(applied and deleted while the payment waited: {shipped_first}) and a "
        "conflict was recorded that never "
        f"happened: {conflicts}"
    )
