from __future__ import annotations

from typing import Any

from rest_framework import serializers

from monolith.catalog.models import Category, Product


class CategoryRefSerializer(serializers.ModelSerializer[Category]):
    class Meta:
        model = Category
        fields = ["id", "name", "slug"]


class CategorySerializer(serializers.ModelSerializer[Category]):
    product_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Category
        fields = ["id", "name", "slug", "parent", "description", "product_count"]


class ProductSerializer(serializers.ModelSerializer[Product]):
    category = CategoryRefSerializer(read_only=True)
    stock = serializers.SerializerMethodField()
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "slug",
            "description",
            "category",
            "price",
            "currency",
            "stock",
            "in_stock",
            "created_at",
            "updated_at",
        ]

    def get_stock(self, product: Product) -> int:
        return _on_hand(product)

    def get_in_stock(self, product: Product) -> bool:
        return _on_hand(product) > 0


def _on_hand(product: Any) -> int:
    stock = getattr(product, "stock", None)
    return int(stock.on_hand) if stock is not None else 0
