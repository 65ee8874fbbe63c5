"""Read API of the catalog: ``/api/catalog/products/`` and ``/api/catalog/categories/``."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from rest_framework import viewsets

from monolith.catalog.filters import ProductFilter
from monolith.catalog.models import Category, Product
from monolith.catalog.serializers import CategorySerializer, ProductSerializer


class ProductViewSet(viewsets.ReadOnlyModelViewSet[Product]):
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ["name", "sku", "description"]
    ordering_fields = ["id", "name", "price", "created_at"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[Product]:
        return Product.objects.filter(is_active=True).select_related("category", "stock")


class CategoryViewSet(viewsets.ReadOnlyModelViewSet[Category]):
    serializer_class = CategorySerializer
    search_fields = ["name", "slug"]
    ordering_fields = ["id", "name"]
    ordering = ["id"]
    filterset_fields = ["parent"]

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.annotate(
            product_count=Count("products", filter=Q(products__is_active=True))
        )
