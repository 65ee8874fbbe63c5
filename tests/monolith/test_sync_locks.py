"""Applying the orders function's changes never deadlocks with the shop's own requests.

A receive holds up to ten changes. Applied in one transaction, the cancellation of
order A (which gives product P's stock back, under P's row lock) kept that lock while
the consumer went on to order B; a customer cancelling B through the API held B's row
and waited for P — and the consumer, now waiting for B, closed the cycle: PostgreSQL
broke it by failing one of them (a 500 for the customer). Each change of a two-way
stream is applied in a transaction of its own, so the consumer holds no lock of A's
while it waits for B."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from facade.sync.conflict import Stamp
from facade.sync.django import inbox
from facade.sync.django.models import EntityVersion
from facade.sync.messages import Change
from monolith.catalog.models import StockLevel
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from monolith.orders.sync import order_state
from tests.monolith.conftest import make_product
from tests.servers import ORDERS_PAIR

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]
WAIT = 20.0  # seconds: far longer than either side needs without a lock cycle


def _from_the_function(order: Order, status: str) -> Change:
    """The function's change of ``order`` to ``status``, made on the monolith's state."""
    held = EntityVersion.objects.get(aggregate="orders.Order", object_id=str(order.pk))
    state = {**order_state(order), "status": status}
    lifecycle = ORDERS_PAIR.lifecycle
    assert lifecycle is not None
    return Change(
        stream=ORDERS_PAIR.streams[1], aggregate="orders.Order", id=str(order.pk),
        kind="upsert", data=state, version=held.clock + 1, origin="orders",
        event=f"{order.pk}-{status}", rank=lifecycle.rank(state),
        base=Stamp(held.rank, held.version, held.origin),
    )  # fmt: skip


def test_a_receive_holds_no_lock_of_one_order_while_it_applies_the_next(
    buyer: Customer,
) -> None:
    product = make_product("LOCKS-1", 10)
    a, b = (services.place_order(buyer, [services.LineRequest(product.pk, 2)]) for _ in "ab")
    changes = [_from_the_function(a, "cancelled"), _from_the_function(b, "paid")]
    between = threading.Event()  # the consumer is between A and B
    cancelled_b = threading.Event()
    errors: list[BaseException] = []

    def customer_cancels_b() -> None:
        try:
            between.wait(WAIT)
            services.transition(b.pk, "cancelled")  # B's row, then P's stock
            cancelled_b.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def after_each(change: Change) -> None:
        if change.id == str(a.pk):
            between.set()
            # with A's locks still held, the customer's cancel would wait for them
            assert cancelled_b.wait(WAIT), "the customer's cancel waited for the consumer"

    customer = threading.Thread(target=customer_cancels_b)
    customer.start()
    outcomes = inbox.apply_batch(changes, after_each=after_each)
    customer.join(WAIT)
    assert not customer.is_alive()
    assert errors == []
    assert outcomes == [True, False]  # B's payment lost to the customer's cancellation
    assert set(Order.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {
        "cancelled"
    }
    assert StockLevel.objects.get(product=product).on_hand == 10  # each given back once
