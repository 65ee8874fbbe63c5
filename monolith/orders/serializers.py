from __future__ import annotations

from typing import Any

from rest_framework import serializers

from monolith.orders.models import Order, OrderLine
from monolith.orders.services import MAX_LINES


class OrderLineSerializer(serializers.ModelSerializer[OrderLine]):
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = OrderLine
        fields = ["product", "sku", "quantity", "unit_price", "line_total"]


class OrderSerializer(serializers.ModelSerializer[Order]):
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "customer",
            "status",
            "currency",
            "total",
            "lines",
            "placed_at",
            "paid_at",
            "shipped_at",
            "cancelled_at",
            "updated_at",
        ]


class LineRequestSerializer(serializers.Serializer[Any]):
    product = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class PlaceOrderSerializer(serializers.Serializer[Any]):
    lines = LineRequestSerializer(many=True, allow_empty=False)

    def validate_lines(self, lines: list[dict[str, int]]) -> list[dict[str, int]]:
        if len(lines) > MAX_LINES:
            raise serializers.ValidationError(f"An order has at most {MAX_LINES} lines.")
        return lines
