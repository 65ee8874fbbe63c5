"""Assertions about the shapes every backend of the shop must answer with."""

from __future__ import annotations

import re
from typing import Any

import httpx

MONEY = re.compile(r"^\d+\.\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

PRODUCT_KEYS = {
    "id", "sku", "name", "slug", "description", "category", "price", "currency", "stock",
    "in_stock", "created_at", "updated_at",
}  # fmt: skip
ORDER_KEYS = {
    "id", "customer", "status", "currency", "total", "lines", "placed_at", "paid_at",
    "shipped_at", "cancelled_at", "updated_at",
}  # fmt: skip
LINE_KEYS = {"product", "sku", "quantity", "unit_price", "line_total"}
CUSTOMER_KEYS = {
    "id", "email", "full_name", "phone", "address_line", "city", "postal_code", "country",
    "created_at",
}  # fmt: skip


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an error in the shop's envelope with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["status"] == status
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


def assert_page(body: Any) -> list[dict[str, Any]]:
    assert set(body) == {"count", "next", "previous", "results"}, body.keys()
    assert isinstance(body["count"], int)
    assert isinstance(body["results"], list)
    return list(body["results"])


def assert_product(product: dict[str, Any]) -> None:
    assert set(product) == PRODUCT_KEYS
    assert isinstance(product["id"], int)
    assert MONEY.match(product["price"]), product["price"]
    assert set(product["category"]) == {"id", "name", "slug"}
    assert isinstance(product["stock"], int)
    assert product["stock"] >= 0
    assert product["in_stock"] is (product["stock"] > 0)
    assert TIMESTAMP.match(product["created_at"])


def assert_order(order: dict[str, Any]) -> None:
    assert set(order) == ORDER_KEYS
    assert order["status"] in {"placed", "paid", "shipped", "cancelled"}
    assert MONEY.match(order["total"])
    assert order["lines"]
    for line in order["lines"]:
        assert set(line) == LINE_KEYS
        assert MONEY.match(line["unit_price"])
    assert TIMESTAMP.match(order["placed_at"])


def product_with_stock(api: httpx.Client, minimum: int = 1, below: int = 1000) -> dict[str, Any]:
    """Some active product whose stock is in [minimum, below)."""
    page = 1
    while True:
        response = api.get(
            "/api/catalog/products/", params={"in_stock": "true", "page": page, "page_size": 100}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        for product in body["results"]:
            if minimum <= product["stock"] < below:
                return dict(product)
        if not body["next"]:
            raise AssertionError(f"the shop has no product with stock in [{minimum}, {below})")
        page += 1
