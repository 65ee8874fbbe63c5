"""The order rules of ``monolith.orders.services``, on whichever database the run uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monolith.core.errors import InvalidTransition, NotFound, OutOfStock, ShopError
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order, OrderLine, OrderStatus
from monolith.orders.services import LineRequest, place_order, transition
from tests.monolith.conftest import make_product, stock


def test_placing_reserves_stock_and_snapshots_prices(buyer: Customer) -> None:
    mug = make_product("MUG", 5, "4.50")
    pan = make_product("PAN", 2, "30.00")
    order = place_order(buyer, [LineRequest(mug.pk, 2), LineRequest(pan.pk, 1)])
    assert order.total == Decimal("39.00")
    assert [(line.sku, line.quantity) for line in order.lines.all()] == [("MUG", 2), ("PAN", 1)]
    assert (stock(mug), stock(pan)) == (3, 1)


def test_duplicate_lines_are_merged(buyer: Customer) -> None:
    mug = make_product("MUG", 5)
    order = place_order(buyer, [LineRequest(mug.pk, 2), LineRequest(mug.pk, 3)])
    assert [line.quantity for line in order.lines.all()] == [5]
    assert stock(mug) == 0


def test_a_failing_line_rolls_back_every_reservation(buyer: Customer) -> None:
    plenty = make_product("A-PLENTY", 50)
    scarce = make_product("B-SCARCE", 1)
    with pytest.raises(OutOfStock) as caught:
        place_order(buyer, [LineRequest(plenty.pk, 10), LineRequest(scarce.pk, 2)])
    assert caught.value.details == {
        "product": scarce.pk, "sku": "B-SCARCE", "requested": 2, "available": 1
    }  # fmt: skip
    assert "B-SCARCE" in caught.value.message
    assert stock(plenty) == 50
    assert stock(scarce) == 1
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()


def test_unknown_and_inactive_products_are_not_found(buyer: Customer) -> None:
    retired = make_product("OLD", 10)
    retired.is_active = False
    retired.save()
    with pytest.raises(NotFound):
        place_order(buyer, [LineRequest(retired.pk, 1)])
    with pytest.raises(NotFound):
        place_order(buyer, [LineRequest(987654, 1)])
    assert stock(retired) == 10


@pytest.mark.parametrize("lines", [[], [LineRequest(1, 0)], [LineRequest(1, -2)]])
def test_empty_orders_and_non_positive_quantities_are_refused(
    buyer: Customer, lines: list[LineRequest]
) -> None:
    with pytest.raises(ShopError):
        place_order(buyer, lines)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ([], {"paid", "cancelled"}),
        (["paid"], {"shipped", "cancelled"}),
        (["paid", "shipped"], set()),
        (["cancelled"], set()),
        (["paid", "cancelled"], set()),
    ],
)
def test_transition_rules(buyer: Customer, path: list[str], allowed: set[str]) -> None:
    """From each reachable status exactly the documented next statuses are accepted."""
    for target in {"paid", "shipped", "cancelled", "placed"}:
        mug = make_product(f"MUG-{target}-{len(path)}", 5)
        order = place_order(buyer, [LineRequest(mug.pk, 1)])
        for step in path:
            transition(order.pk, step)
        if target in allowed:
            assert transition(order.pk, target).status == target
        else:
            with pytest.raises(InvalidTransition):
                transition(order.pk, target)


def test_cancelling_releases_stock_once(buyer: Customer) -> None:
    mug = make_product("MUG", 5)
    order = place_order(buyer, [LineRequest(mug.pk, 3)])
    cancelled = transition(order.pk, OrderStatus.CANCELLED)
    assert cancelled.cancelled_at is not None
    assert stock(mug) == 5
    with pytest.raises(InvalidTransition):
        transition(order.pk, OrderStatus.CANCELLED)
    assert stock(mug) == 5


def test_checkout_places_the_cart_and_empties_it(buyer: Customer) -> None:
    mug = make_product("MUG", 5)
    services.set_cart_quantity(buyer, mug.pk, 2)
    services.set_cart_quantity(buyer, mug.pk, 3)  # sets, does not add
    order = services.checkout(buyer)
    assert [line.quantity for line in order.lines.all()] == [3]
    assert not services.cart_of(buyer).items.exists()
    with pytest.raises(ShopError, match="empty"):
        services.checkout(buyer)


def test_failed_checkout_keeps_the_cart(buyer: Customer) -> None:
    mug = make_product("MUG", 1)
    services.set_cart_quantity(buyer, mug.pk, 4)
    with pytest.raises(OutOfStock):
        services.checkout(buyer)
    assert services.cart_of(buyer).items.get().quantity == 4
    assert stock(mug) == 1
