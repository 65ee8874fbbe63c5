"""Fixtures for in-process tests of the monolith (Django test database: PostgreSQL or SQLite)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monolith.catalog.models import Category, Product, StockLevel
from monolith.customers.models import Customer
from monolith.customers.services import register_customer


def make_product(
    sku: str, stock: int, price: str = "10.00", category: Category | None = None
) -> Product:
    category = category or Category.objects.get_or_create(slug="test", defaults={"name": "Test"})[0]
    product = Product.objects.create(
        sku=sku, name=f"Product {sku}", slug=sku.lower(), category=category, price=Decimal(price)
    )
    StockLevel.objects.create(product=product, on_hand=stock)
    return product


def stock(product: Product) -> int:
    return StockLevel.objects.get(product=product).on_hand


@pytest.fixture
def buyer(db: None) -> Customer:
    return register_customer("buyer@example.com", "Buyer-pass-123", full_name="Bea Buyer")
