"""The order rules, independent of HTTP: placing, paying, shipping, cancelling, carts.

Placing an order reserves stock in the same transaction as the order rows. Each
reservation is one conditional UPDATE (``on_hand = on_hand - q WHERE on_hand >= q``):
PostgreSQL re-evaluates the condition after waiting for a concurrent writer's row lock,
so two orders can never both take the last unit, and a failed line rolls back every
reservation the order made before it. Lines are reserved in product-id order so that
two orders touching the same products cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from monolith.catalog.models import Product, StockLevel
from monolith.core.errors import InvalidTransition, NotFound, OutOfStock, ShopError
from monolith.customers.models import Customer
from monolith.orders.models import Cart, CartItem, Order, OrderLine, OrderStatus

TRANSITIONS: Mapping[str, frozenset[str]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

MAX_LINES = 50


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


def _merge(lines: Iterable[LineRequest]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for line in lines:
        if line.quantity <= 0:
            raise ShopError(
                f"Quantity for product {line.product_id} must be at least 1.",
                product=line.product_id,
            )
        merged[line.product_id] = merged.get(line.product_id, 0) + line.quantity
    if not merged:
        raise ShopError("An order needs at least one line.")
    if len(merged) > MAX_LINES:
        raise ShopError(f"An order has at most {MAX_LINES} distinct products.")
    return merged


def place_order(customer: Customer, lines: Iterable[LineRequest]) -> Order:
    """Create an order and reserve its stock atomically; nothing is written on failure."""
    wanted = _merge(lines)
    with transaction.atomic():
        products = Product.objects.in_bulk(sorted(wanted))
        missing = [
            pid for pid in sorted(wanted) if pid not in products or not products[pid].is_active
        ]
        if missing:
            raise NotFound(
                f"Product {missing[0]} does not exist or is not for sale.", products=missing
            )
        for product_id in sorted(wanted):
            quantity = wanted[product_id]
            reserved = StockLevel.objects.filter(
                product_id=product_id, on_hand__gte=quantity
            ).update(on_hand=F("on_hand") - quantity, updated_at=timezone.now())
            if not reserved:
                product = products[product_id]
                available = (
                    StockLevel.objects.filter(product_id=product_id)
                    .values_list("on_hand", flat=True)
                    .first()
                ) or 0
                raise OutOfStock(
                    f"Not enough stock for product {product_id} ({product.sku}): "
                    f"requested {quantity}, available {available}.",
                    product=product_id,
                    sku=product.sku,
                    requested=quantity,
                    available=available,
                )
        currency = {products[pid].currency for pid in wanted}
        if len(currency) != 1:
            raise ShopError("All products of an order must share one currency.")
        now = timezone.now()
        order = Order.objects.create(
            customer=customer,
            currency=currency.pop(),
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


def _release_stock(order: Order) -> None:
    for line in order.lines.order_by("product_id"):
        StockLevel.objects.filter(product_id=line.product_id).update(
            on_hand=F("on_hand") + line.quantity, updated_at=timezone.now()
        )


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
        if target == OrderStatus.CANCELLED:
            _release_stock(order)
        order.save(update_fields=["status", "updated_at", stamp])
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
