"""Pages, admin, health and error pages of the monolith, through Django's test client."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from monolith.customers.models import Customer
from monolith.orders.models import Order
from tests.monolith.conftest import make_product, stock

pytestmark = pytest.mark.django_db


def test_healthz_reports_the_database() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_not_found_is_json_under_api_and_html_elsewhere() -> None:
    api = Client().get("/api/does-not-exist")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    page = Client().get("/shop/does-not-exist/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_root_redirects_to_the_shop() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/shop/"


def test_shop_lists_searches_and_shows_products() -> None:
    make_product("OAK-TABLE", 3)
    make_product("STEEL-PAN", 0)
    client = Client()
    listing = client.get("/shop/", {"q": "OAK-TABLE"})
    assert listing.status_code == 200
    assert b"OAK-TABLE" in listing.content
    assert b"STEEL-PAN" not in listing.content
    product = make_product("GLASS-JAR", 9)
    detail = client.get(f"/shop/products/{product.pk}/")
    assert b"In stock: 9" in detail.content


def test_customer_buys_through_the_pages(buyer: Customer) -> None:
    product = make_product("JAR", 5)
    client = Client()
    assert client.get("/shop/cart/").status_code == 302  # login first
    login = client.post(
        "/shop/login/", {"username": "buyer@example.com", "password": "Buyer-pass-123"}
    )
    assert login.status_code == 302
    client.post("/shop/cart/update/", {"product": product.pk, "quantity": 2})
    assert b"Product JAR" in client.get("/shop/cart/").content
    placed = client.post("/shop/checkout/", follow=True)
    order = Order.objects.get(customer=buyer)
    assert placed.redirect_chain[-1][0] == f"/shop/orders/{order.pk}/"
    assert stock(product) == 3
    client.post(f"/shop/orders/{order.pk}/cancel/")
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert stock(product) == 5
    assert f"Order {order.pk}".encode() in client.get("/shop/orders/").content


def test_checkout_failure_is_shown_and_nothing_is_ordered(buyer: Customer) -> None:
    product = make_product("RARE", 1)
    client = Client()
    client.login(username="buyer@example.com", password="Buyer-pass-123")
    client.post("/shop/cart/update/", {"product": product.pk, "quantity": 3})
    response = client.post("/shop/checkout/", follow=True)
    assert b"Not enough stock for product" in response.content
    assert not Order.objects.exists()


def test_admin_changelists_render_for_staff(buyer: Customer) -> None:
    make_product("ADMIN-1", 1)
    get_user_model().objects.create_superuser("boss@example.com", "boss@example.com", "pw-boss-123")
    client = Client()
    client.login(username="boss@example.com", password="pw-boss-123")
    for url in (
        "/admin/catalog/product/",
        "/admin/catalog/category/",
        "/admin/customers/customer/",
        "/admin/orders/order/",
    ):
        assert client.get(url).status_code == 200, url
