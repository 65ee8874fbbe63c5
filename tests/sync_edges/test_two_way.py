"""Edge cases of the two-way order pair: what the monolith lets happen to an order that
the orders function can never follow."""

from __future__ import annotations

import pytest
from django.db import transaction

from extracted.orders import sync as orders_sync
from facade.sync.django.models import OutboxEvent
from facade.sync.django.relay import change
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from tests.monolith.conftest import make_product

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_deleted_in_the_admin_is_refused_or_followed_by_the_function(
    buyer: Customer,
) -> None:
    """The Django admin offers "Delete" on an order (OrderAdmin does not forbid it, and
    nothing in the toolkit refuses deleting a two-way entity, the way it refuses moving
    one backwards). The monolith deletes the order and publishes a delete event, which
    the function's handler can never apply ("orders are cancelled, not deleted, across
    the cut"): the message goes to the DLQ and the two sides differ for good — the
    function keeps an order the monolith no longer has, and `verify --repair` cannot
    re-emit it from the monolith. Either the delete must be refused here, or the other
    side must be able to follow it."""
    product = make_product("DEL", 10)
    order = services.place_order(buyer, [services.LineRequest(product.pk, 1)])
    refused = False
    try:
        with transaction.atomic():
            Order.objects.get(pk=order.pk).delete()  # what the admin's delete view does
    except Exception:
        refused = True
    if refused:
        assert Order.objects.filter(pk=order.pk).exists()
        return
    deletes = OutboxEvent.objects.filter(
        aggregate="orders.Order", aggregate_id=str(order.pk), kind="delete"
    )
    assert deletes.exists()
    message = change(deletes.get())
    try:
        orders_sync.apply(message, into=None)  # type: ignore[arg-type]
    except orders_sync.Unusable as exc:
        pytest.fail(
            f"the monolith deleted order {order.pk} and published a change the function "
            f"can never apply (it ends in the DLQ, the sides differ for good): {exc}"
        )


def test_a_shipped_order_is_not_cancelled_by_a_cancellation_made_before_it_shipped(
    buyer: Customer,
) -> None:
    """Issue 13: "a stale change can never move an order backwards through its lifecycle
    (a shipped order is not cancelled by a change made before it shipped)". The order is
    paid here and the function has that state; at 10:00 the customer, pinned to the
    canary, cancels on the function; at 10:01 staff ship it here, not yet knowing. The
    cancellation arrives and wins by rank (cancelled > shipped): the monolith's shipped
    order becomes cancelled and its stock goes back on the shelf while the parcel is on
    its way — a transition (shipped → cancelled) that TRANSITIONS forbids on both sides.
    The lifecycle as a total order cannot express "shipped and cancelled are both final
    and exclude each other"; the conflict should at least keep the shipment (or be
    surfaced for a person) rather than silently restock shipped goods."""
    import datetime as dt

    from facade.sync.conflict import Stamp
    from facade.sync.django import inbox
    from facade.sync.django.models import EntityVersion
    from facade.sync.messages import Change
    from monolith.catalog.models import StockLevel
    from monolith.orders.sync import order_state

    product = make_product("SHIP", 10)
    order = services.place_order(buyer, [services.LineRequest(product.pk, 2)])
    services.transition(order.pk, "paid")
    row = EntityVersion.objects.get(aggregate="orders.Order", object_id=str(order.pk))
    paid = Stamp(row.rank, row.version, row.origin)
    # 10:00 on the function: cancelled, made on the paid state it had
    cancelled_state = order_state(Order.objects.get(pk=order.pk))
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    cancelled_state.update(status="cancelled", cancelled_at=at, updated_at=at)
    cancel = Change(
        stream="orders-to-monolith", aggregate="orders.Order", id=str(order.pk),
        kind="upsert", data=cancelled_state, version=paid.version + 1, origin="orders",
        event="cancel", at=at, rank=3, base=paid,
    )  # fmt: skip
    # 10:01 here: shipped
    services.transition(order.pk, "shipped")
    on_shelf = StockLevel.objects.get(product=product).on_hand
    inbox.apply(cancel)
    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert StockLevel.objects.get(product=product).on_hand == on_shelf
