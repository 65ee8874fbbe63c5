"""Orders during the canary: both the monolith and the orders service take writes.

Two streams carry them (routing.yaml ``sync:``): ``orders-to-lambda`` publishes every
change of an order here (``order_state``) to the service's table, ``orders-to-monolith``
brings the service's changes here (``apply_order``, through the toolkit's inbox,
``facade.sync.django.inbox``). An order is a two-way entity: routing.yaml declares the
pair once, with the order's lifecycle (a concurrent cancellation beats a payment, so a
cancellation is final on both sides) and the id split (new orders here take ids below
10^9, still a 32-bit integer, from the toolkit's allocator; the service's start at it).

Stock stays with the monolith. A cancellation, made here or applied from the service,
gives the order's stock back once (``catalog.stock.release_order``): through its
reservation for the service's orders, directly for the monolith's own.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from monolith.catalog import stock
from monolith.orders.models import Order, OrderLine, OrderStatus


def _moment_text(value: dt.datetime | None) -> str | None:
    """As the orders API shows it: ISO 8601 in UTC, ``Z``."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def order_state(order: Order) -> dict[str, Any]:
    """An order as the orders API shows it, plus the reservation that holds its stock."""
    return {
        "id": order.pk,
        "customer": order.customer_id,
        "status": order.status,
        "currency": order.currency,
        "total": f"{order.total:.2f}",
        "lines": [
            {
                "product": line.product_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": f"{line.unit_price:.2f}",
                "line_total": f"{line.line_total:.2f}",
            }
            for line in sorted(order.lines.all(), key=lambda x: (x.product_id, x.pk))
        ],
        **{
            name: _moment_text(getattr(order, name))
            for name in ("placed_at", "paid_at", "shipped_at", "cancelled_at", "updated_at")
        },
        "reservation": order.stock_reservation or None,
    }


def _moment(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def release_stock(order: Order) -> bool:
    return stock.release_order(
        order.pk, order.stock_reservation, order.lines.values_list("product_id", "quantity")
    )


def apply_order(object_id: str, kind: str, data: dict[str, Any] | None) -> None:
    """Write an order the service changed (its stock was reserved through the internal
    API); an order that becomes cancelled here gives its stock back (once)."""
    if kind == "delete" or data is None:
        Order.objects.filter(pk=int(object_id)).delete()
        return
    before = Order.objects.filter(pk=int(object_id)).values_list("status", flat=True).first()
    order, _ = Order.objects.update_or_create(
        pk=int(object_id),
        defaults={
            "customer_id": int(data["customer"]),
            "status": data["status"],
            "currency": data["currency"],
            "total": Decimal(data["total"]),
            "placed_at": _moment(data["placed_at"]) or timezone.now(),
            "paid_at": _moment(data.get("paid_at")),
            "shipped_at": _moment(data.get("shipped_at")),
            "cancelled_at": _moment(data.get("cancelled_at")),
            "updated_at": _moment(data.get("updated_at")) or _moment(data["placed_at"]),
            "stock_reservation": data.get("reservation") or "",
        },
    )
    lines = sorted((int(x["product"]), x["sku"], int(x["quantity"]), x["unit_price"])
                   for x in data["lines"])  # fmt: skip
    held = sorted(order.lines.values_list("product_id", "sku", "quantity", "unit_price"))
    if [(p, s, q, Decimal(u)) for p, s, q, u in lines] != held:
        OrderLine.objects.filter(order=order).delete()
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product_id=p, sku=s, quantity=q, unit_price=Decimal(u))
            for p, s, q, u in lines
        )
    if order.status == OrderStatus.CANCELLED and before != OrderStatus.CANCELLED:
        release_stock(order)
