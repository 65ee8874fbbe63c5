"""Query-string filters of the product list: ``category``, ``min_price``, ``max_price``,
``in_stock`` and ``sku``; free-text ``search`` and ``ordering`` come from DRF's filters."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from monolith.catalog.models import Product


class ProductFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(method="filter_category", label="category slug or id")
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    in_stock = django_filters.BooleanFilter(method="filter_in_stock")
    sku = django_filters.CharFilter(field_name="sku", lookup_expr="exact")

    class Meta:
        model = Product
        fields = ["category", "min_price", "max_price", "in_stock", "sku"]

    def filter_category(
        self, queryset: QuerySet[Product], name: str, value: str
    ) -> QuerySet[Product]:
        # A parent category includes the products of its direct children.
        if value.isdigit():
            match = Q(category_id=int(value)) | Q(category__parent_id=int(value))
        else:
            match = Q(category__slug=value) | Q(category__parent__slug=value)
        return queryset.filter(match)

    def filter_in_stock(
        self, queryset: QuerySet[Product], name: str, value: bool | None
    ) -> QuerySet[Product]:
        if value is None:
            return queryset
        return (
            queryset.filter(stock__on_hand__gt=0)
            if value
            else queryset.exclude(stock__on_hand__gt=0)
        )
