"""Contract of ``/api/orders/``: placing orders against stock, and the status rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from tests.contract.conftest import Account
from tests.contract.helpers import assert_error, assert_order, assert_page, product_with_stock

AREA = "orders"  # runs against every deployment that serves /api/orders/

ORDERS = "/api/orders/"


def stock_of(shop: httpx.Client, product_id: int) -> int:
    return int(shop.get(f"/api/catalog/products/{product_id}/").json()["stock"])


def place(account: Account, product_id: int, quantity: int) -> httpx.Response:
    return account.client.post(
        ORDERS, json={"lines": [{"product": product_id, "quantity": quantity}]}
    )


def placed_order(account: Account, shop: httpx.Client, quantity: int = 1) -> dict[str, Any]:
    product = product_with_stock(shop, minimum=quantity + 1)
    response = place(account, product["id"], quantity)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_orders_need_authentication(api: httpx.Client) -> None:
    assert_error(api.get(ORDERS), 401, "not_authenticated")
    assert_error(api.post(ORDERS, json={"lines": []}), 401, "not_authenticated")


def test_placing_an_order_reserves_stock(customer: Account, shop: httpx.Client) -> None:
    product = product_with_stock(shop, minimum=3)
    response = place(customer, product["id"], 2)
    assert response.status_code == 201, response.text
    order = response.json()
    assert_order(order)
    assert order["status"] == "placed"
    assert order["customer"] == customer.id
    assert Decimal(order["total"]) == Decimal(product["price"]) * 2
    assert order["lines"][0]["product"] == product["id"]
    assert order["lines"][0]["line_total"] == order["total"]
    assert order["paid_at"] is None
    assert stock_of(shop, product["id"]) <= product["stock"] - 2


def test_too_little_stock_is_409_naming_the_product_and_writes_nothing(
    customer: Account, shop: httpx.Client
) -> None:
    product = product_with_stock(shop, minimum=1, below=999)
    before_orders = customer.client.get(ORDERS).json()["count"]
    response = place(customer, product["id"], product["stock"] + 1)
    error = assert_error(response, 409, "out_of_stock")
    assert error["details"]["product"] == product["id"]
    assert error["details"]["requested"] == product["stock"] + 1
    assert str(product["id"]) in error["message"]
    assert customer.client.get(ORDERS).json()["count"] == before_orders
    assert stock_of(shop, product["id"]) == product["stock"]


def test_an_order_for_an_unknown_product_is_404(customer: Account) -> None:
    assert_error(place(customer, 99999999, 1), 404, "not_found")


def test_invalid_order_bodies_are_validation_errors(customer: Account) -> None:
    error = assert_error(customer.client.post(ORDERS, json={"lines": []}), 400, "validation_error")
    assert "lines" in error["fields"]
    error = assert_error(customer.client.post(ORDERS, json={}), 400, "validation_error")
    assert "lines" in error["fields"]
    malformed = customer.client.post(
        ORDERS, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(malformed, 400, "malformed_request")


def test_pay_then_cancel_releases_stock(customer: Account, shop: httpx.Client) -> None:
    order = placed_order(customer, shop, quantity=2)
    product_id = order["lines"][0]["product"]
    stock_after_order = stock_of(shop, product_id)

    paid = customer.client.post(f"{ORDERS}{order['id']}/pay/")
    assert paid.status_code == 200
    assert paid.json()["status"] == "paid"
    assert paid.json()["paid_at"]
    assert_error(customer.client.post(f"{ORDERS}{order['id']}/pay/"), 409, "invalid_transition")

    cancelled = customer.client.post(f"{ORDERS}{order['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert stock_of(shop, product_id) >= stock_after_order + 2
    assert_error(customer.client.post(f"{ORDERS}{order['id']}/pay/"), 409, "invalid_transition")


def test_only_staff_ship_and_shipped_is_final(
    customer: Account, shop: httpx.Client, staff: httpx.Client
) -> None:
    order = placed_order(customer, shop)
    assert_error(staff.post(f"{ORDERS}{order['id']}/ship/"), 409, "invalid_transition")
    customer.client.post(f"{ORDERS}{order['id']}/pay/")
    assert_error(customer.client.post(f"{ORDERS}{order['id']}/ship/"), 403, "permission_denied")
    shipped = staff.post(f"{ORDERS}{order['id']}/ship/")
    assert shipped.status_code == 200
    assert shipped.json()["status"] == "shipped"
    assert shipped.json()["shipped_at"]
    assert_error(customer.client.post(f"{ORDERS}{order['id']}/cancel/"), 409, "invalid_transition")


def test_customers_see_only_their_own_orders(
    customer: Account, other_customer: Account, shop: httpx.Client
) -> None:
    mine = placed_order(customer, shop)
    theirs = placed_order(other_customer, shop)
    listed = assert_page(customer.client.get(ORDERS).json())
    assert [o["id"] for o in listed] == [mine["id"]]
    assert customer.client.get(f"{ORDERS}{mine['id']}/").json() == listed[0]
    assert_error(customer.client.get(f"{ORDERS}{theirs['id']}/"), 404, "not_found")
    assert_error(customer.client.post(f"{ORDERS}{theirs['id']}/cancel/"), 404, "not_found")


def test_orders_filter_by_status_newest_first(customer: Account, shop: httpx.Client) -> None:
    first = placed_order(customer, shop)
    second = placed_order(customer, shop)
    customer.client.post(f"{ORDERS}{first['id']}/pay/")
    everything = assert_page(customer.client.get(ORDERS).json())
    assert [o["id"] for o in everything] == [second["id"], first["id"]]
    paid = assert_page(customer.client.get(ORDERS, params={"status": "paid"}).json())
    assert [o["id"] for o in paid] == [first["id"]]
