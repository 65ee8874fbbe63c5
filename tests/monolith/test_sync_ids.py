"""Each side of a two-way pair takes new ids from its own range, on every database.

The monolith keeps the orders function's orders under their own ids (from the pair's
split up). SQLite's AUTOINCREMENT (the default database of ``make demo``) and MySQL's
AUTO_INCREMENT jump past the highest id inserted, so an order stored from the function
must not move the monolith's next id into the function's range."""

from __future__ import annotations

from decimal import Decimal

import pytest

from facade.sync.django import ids, inbox
from facade.sync.messages import Change
from monolith.catalog.models import Product
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from monolith.orders.sync import order_state
from tests.monolith.conftest import make_product
from tests.servers import ORDERS_ID_SPLIT, ORDERS_PAIR

pytestmark = pytest.mark.django_db(transaction=True)
SPLIT = ORDERS_ID_SPLIT


def _place(buyer: Customer, product: Product) -> Order:
    return services.place_order(buyer, [services.LineRequest(product.pk, 1)])


def _arrives_from_the_function(model: Order, order_id: int) -> None:
    """The function's order ``order_id`` (shaped like ``model``) applied by the inbox."""
    state = {**order_state(model), "id": order_id}
    change = Change(
        stream=ORDERS_PAIR.streams[1], aggregate="orders.Order", id=str(order_id),
        kind="upsert", data=state, version=1, origin="orders", event=f"e-{order_id}",
        rank=0, base=None,
    )  # fmt: skip
    assert inbox.apply(change) is True


def test_orders_stored_from_the_other_side_never_move_this_sides_next_id(
    buyer: Customer,
) -> None:
    product = make_product("IDS-1", 100)
    first = _place(buyer, product)
    assert first.pk < SPLIT
    _arrives_from_the_function(first, SPLIT + 8)
    _arrives_from_the_function(first, SPLIT + 9)
    second = _place(buyer, product)
    assert second.pk == first.pk + 1  # not SPLIT + 10: the function's next order's id
    assert Order.objects.filter(pk__gte=SPLIT).count() == 2


def test_rows_inserted_with_explicit_ids_in_this_sides_range_are_skipped_after_resync(
    buyer: Customer,
) -> None:
    product = make_product("IDS-2", 100)
    first = _place(buyer, product)
    # a fixture or a seed writes ids of this side's range itself, then resyncs
    Order.objects.create(pk=first.pk + 50, customer=buyer, total=Decimal("1.00"))
    ids.resync(Order)
    assert _place(buyer, product).pk == first.pk + 51


def test_a_new_order_takes_no_id_of_a_row_that_exists(buyer: Customer) -> None:
    product = make_product("IDS-3", 100)
    placed = {_place(buyer, product).pk for _ in range(20)}
    assert len(placed) == 20
    assert max(placed) < SPLIT
