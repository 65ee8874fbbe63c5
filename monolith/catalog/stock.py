"""Stock, owned by the catalog: taking it, giving it back, and reservations for others.

Taking stock is one conditional UPDATE per product (``on_hand = on_hand - q WHERE
on_hand >= q``): PostgreSQL re-evaluates the condition after waiting for a concurrent
writer's row lock, so two buyers can never both take the last unit. Products are taken
in id order so that two orders touching the same products cannot deadlock. ``take``
must run inside the caller's transaction: a later failure rolls every line back.

Stock changes are queryset updates, which send no signals: both record the new stock
levels in the outbox themselves, in the caller's transaction.

The monolith's own orders call ``take`` directly; services that keep their orders
elsewhere call ``reserve``/``release`` through the internal API with an idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from facade.sync.django import recording as outbox
from monolith.catalog.models import Product, ReservationStatus, StockLevel, StockReservation
from monolith.core.errors import Conflict, NotFound, OutOfStock, ShopError

MAX_LINES = 50


def merge(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantities per product from (product id, quantity) pairs; duplicates add up."""
    merged: dict[int, int] = {}
    for product_id, quantity in lines:
        if quantity <= 0:
            raise ShopError(
                f"Quantity for product {product_id} must be at least 1.", product=product_id
            )
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not merged:
        raise ShopError("An order needs at least one line.")
    if len(merged) > MAX_LINES:
        raise ShopError(f"An order has at most {MAX_LINES} distinct products.")
    return merged


def take(wanted: Mapping[int, int]) -> dict[int, Product]:
    """Take ``wanted`` (product id → quantity) from stock; return the products by id.

    Raises ``NotFound`` for unknown or retired products, ``OutOfStock`` naming the first
    short product, ``ShopError`` when the products do not share one currency. Call it in
    a transaction: stock already taken for earlier lines is then rolled back too.
    """
    products = Product.objects.in_bulk(sorted(wanted))
    missing = [pid for pid in sorted(wanted) if pid not in products or not products[pid].is_active]
    if missing:
        raise NotFound(f"Product {missing[0]} does not exist or is not for sale.", products=missing)
    for product_id in sorted(wanted):
        quantity = wanted[product_id]
        taken = StockLevel.objects.filter(product_id=product_id, on_hand__gte=quantity).update(
            on_hand=F("on_hand") - quantity, updated_at=timezone.now()
        )
        if not taken:
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
    if len({products[pid].currency for pid in wanted}) != 1:
        raise ShopError("All products of an order must share one currency.")
    outbox.record_ids(
        StockLevel, StockLevel.objects.filter(product_id__in=wanted).values_list("pk", flat=True)
    )
    return products


def give_back(quantities: Iterable[tuple[int, int]]) -> None:
    """Return (product id, quantity) pairs to stock, in product-id order."""
    returned = sorted(quantities)
    for product_id, quantity in returned:
        StockLevel.objects.filter(product_id=product_id).update(
            on_hand=F("on_hand") + quantity, updated_at=timezone.now()
        )
    products = [product_id for product_id, _ in returned]
    outbox.record_ids(
        StockLevel, StockLevel.objects.filter(product_id__in=products).values_list("pk", flat=True)
    )


def describe(reservation: StockReservation) -> dict[str, Any]:
    return {
        "key": reservation.key,
        "status": reservation.status,
        "currency": reservation.currency,
        "total": f"{reservation.total:.2f}",
        "lines": reservation.lines,
        "created_at": reservation.created_at.isoformat(),
        "released_at": reservation.released_at.isoformat() if reservation.released_at else None,
    }


def _same_request(reservation: StockReservation, wanted: Mapping[int, int]) -> bool:
    return {int(line["product"]): int(line["quantity"]) for line in reservation.lines} == dict(
        wanted
    )


def reserve(key: str, lines: Iterable[tuple[int, int]]) -> tuple[StockReservation, bool]:
    """Take stock under an idempotency key; return (reservation, created).

    A repeated call with the same key and lines returns the first reservation and takes
    nothing. The same key with other lines, or a key already released, is a ``Conflict``.
    """
    wanted = merge(lines)
    existing = StockReservation.objects.filter(key=key).first()
    if existing is None:
        try:
            with transaction.atomic():
                products = take(wanted)
                rows = [
                    {
                        "product": pid,
                        "sku": products[pid].sku,
                        "quantity": quantity,
                        "unit_price": f"{products[pid].price:.2f}",
                    }
                    for pid, quantity in sorted(wanted.items())
                ]
                reservation = StockReservation.objects.create(
                    key=key,
                    lines=rows,
                    currency=products[next(iter(wanted))].currency,
                    total=sum(
                        (products[pid].price * q for pid, q in wanted.items()), Decimal("0.00")
                    ),
                )
            return reservation, True
        except IntegrityError:  # a concurrent call with the same key won; answer as it did
            existing = StockReservation.objects.get(key=key)
    if existing.status == ReservationStatus.RELEASED:
        raise Conflict(
            f"Reservation {key} was released; use a new idempotency key.",
            key=key,
            status=existing.status,
        )
    if not _same_request(existing, wanted):
        raise Conflict(
            f"Reservation {key} exists with other lines; an idempotency key names one request.",
            key=key,
        )
    return existing, False


def release_order(order_id: int, reservation: str, lines: Iterable[tuple[int, int]]) -> bool:
    """Give an order's stock back once, whichever side cancels it and however often;
    True when it was given back now.

    An order placed through a reservation releases that reservation. One whose stock was
    taken directly leaves a released ``order-<id>`` record the first time, so that a
    cancellation arriving from the other side of a canary gives nothing back twice.
    """
    if reservation:
        return release(reservation)[1]
    returned = sorted(lines)
    with transaction.atomic():
        _, created = StockReservation.objects.get_or_create(
            key=f"order-{order_id}",
            defaults={
                "status": ReservationStatus.RELEASED,
                "released_at": timezone.now(),
                "lines": [{"product": p, "quantity": q} for p, q in returned],
            },
        )
        if created:
            give_back(returned)
    return created


def release(key: str) -> tuple[StockReservation, bool]:
    """Give a reservation's stock back once; return (reservation, released now).

    Releasing an unknown key records a released tombstone, so that a reservation with
    that key arriving later (a retried or delayed request) takes nothing.
    """
    with transaction.atomic():
        reservation, created = StockReservation.objects.select_for_update().get_or_create(
            key=key,
            defaults={"status": ReservationStatus.RELEASED, "released_at": timezone.now()},
        )
        if created or reservation.status == ReservationStatus.RELEASED:
            return reservation, False
        give_back((int(line["product"]), int(line["quantity"])) for line in reservation.lines)
        reservation.status = ReservationStatus.RELEASED
        reservation.released_at = timezone.now()
        reservation.save(update_fields=["status", "released_at"])
    return reservation, True
