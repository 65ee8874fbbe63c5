"""The order rules, independent of HTTP: placing, paying, shipping, cancelling, carts.

Placing an order takes its stock (``catalog.stock.take``: one conditional UPDATE per
product) in the same transaction as the order rows, so a failure writes nothing.
Cancelling gives the stock back once per order (``orders.sync.release_stock``), also
when the orders service cancels the same order during a canary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from facade.sync.django import recording as outbox
from monolith.catalog import stock
from monolith.catalog.models import Product
from monolith.core.errors import InvalidTransition, NotFound, ShopError
from monolith.customers.models import Customer
from monolith.orders.models import Cart, CartItem, Order, OrderLine, OrderStatus
from monolith.orders.sync import release_stock

TRANSITIONS: Mapping[str, frozenset[str]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

MAX_LINES = stock.MAX_LINES


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


def place_order(customer: Customer, lines: Iterable[LineRequest]) -> Order:
    """Create an order and take its stock atomically; nothing is written on failure."""
    wanted = stock.merge((line.product_id, line.quantity) for line in lines)
    with transaction.atomic():
        products = stock.take(wanted)
        now = timezone.now()
        with outbox.suppressed(Order._meta.label):  # published once, lines included
            order = _create(customer, wanted, products, now)
        outbox.record_ids(Order, [order.pk])
    return order


def _create(
    customer: Customer, wanted: Mapping[int, int], products: Mapping[int, Product], now: datetime
) -> Order:
    order = Order.objects.create(
        customer=customer,
        currency=products[next(iter(wanted))].currency,
        total=sum((products[pid].price * q for pid, q in wanted.items()), Decimal("0.00")),
        placed_at=now,
        updated_at=now,
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product_id=pid,
            sku=products[pid].sku,
            quantity=q,
            unit_price=products[pid].price,
        )
        for pid, q in sorted(wanted.items())
    )
    return order


def transition(order_id: int, target: str) -> Order:
    """Move an order to ``target`` if ``TRANSITIONS`` allows it; cancelling releases stock."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFound(f"Order {order_id} does not exist.", order=order_id)
        if target not in TRANSITIONS[order.status]:
            allowed = sorted(TRANSITIONS[order.status]) or ["none: the order is final"]
            raise InvalidTransition(
                f"Order {order_id} is {order.status}; it cannot become {target}. "
                f"Allowed next: {', '.join(allowed)}.",
                order=order_id,
                status=order.status,
                target=target,
            )
        now = timezone.now()
        order.status = target
        order.updated_at = now
        stamp = {
            OrderStatus.PAID: "paid_at",
            OrderStatus.SHIPPED: "shipped_at",
            OrderStatus.CANCELLED: "cancelled_at",
        }[OrderStatus(target)]
        setattr(order, stamp, now)
        order.save(update_fields=["status", "updated_at", stamp])
        if target == OrderStatus.CANCELLED:
            release_stock(order)
    return order


def cart_of(customer: Customer) -> Cart:
    cart, _ = Cart.objects.get_or_create(customer=customer)
    return cart


def set_cart_quantity(customer: Customer, product_id: int, quantity: int) -> Cart:
    """Put ``quantity`` of a product in the cart (0 removes it)."""
    cart = cart_of(customer)
    if quantity <= 0:
        CartItem.objects.filter(cart=cart, product_id=product_id).delete()
    else:
        if not Product.objects.filter(pk=product_id, is_active=True).exists():
            raise NotFound(f"Product {product_id} does not exist or is not for sale.")
        CartItem.objects.update_or_create(
            cart=cart, product_id=product_id, defaults={"quantity": quantity}
        )
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
    return cart


def checkout(customer: Customer) -> Order:
    """Place an order from the cart and empty it, in one transaction."""
    with transaction.atomic():
        cart = cart_of(customer)
        items = list(cart.items.all())
        if not items:
            raise ShopError("The cart is empty.")
        order = place_order(customer, [LineRequest(i.product_id, i.quantity) for i in items])
        cart.items.all().delete()
    return order
