"""Orders placed or changed on the orders service, written into the monolith's tables.

The inbox (``monolith.outbox.inbox``) calls ``apply_order`` with the order as the
orders API shows it. Its stock was already taken through the monolith's reservation API
when the service placed it (and given back when it cancelled), so applying writes the
order rows only — never stock. Ids come from the service's range (above
``ORDER_ID_BASE``), disjoint from the monolith's own sequence.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from monolith.orders.models import Order, OrderLine


def _moment(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def apply_order(object_id: str, kind: str, data: dict[str, Any] | None) -> None:
    if kind == "delete" or data is None:
        Order.objects.filter(pk=int(object_id)).delete()
        return
    order, _ = Order.objects.update_or_create(
        pk=int(object_id),
        defaults={
            "customer_id": int(data["customer"]),
            "status": data["status"],
            "currency": data["currency"],
            "total": Decimal(data["total"]),
            "placed_at": _moment(data["placed_at"]),
            "paid_at": _moment(data.get("paid_at")),
            "shipped_at": _moment(data.get("shipped_at")),
            "cancelled_at": _moment(data.get("cancelled_at")),
            "updated_at": _moment(data.get("updated_at")) or _moment(data["placed_at"]),
        },
    )
    OrderLine.objects.filter(order=order).delete()
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product_id=int(line["product"]),
            sku=line["sku"],
            quantity=int(line["quantity"]),
            unit_price=Decimal(line["unit_price"]),
        )
        for line in data["lines"]
    )
