"""No oversell under concurrent orders: PostgreSQL row locks, in-process and over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.db import connection

from monolith.core.errors import OutOfStock
from monolith.customers.services import register_customer
from monolith.orders.models import Order
from monolith.orders.services import LineRequest, place_order
from tests.monolith.conftest import make_product, stock
from tests.servers import MonolithServer, psql_url

pytestmark = pytest.mark.postgresql


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_orders_for_ten_units_sell_exactly_ten() -> None:
    assert connection.vendor == "postgresql"
    product = make_product("LAST-TEN", 10)
    buyers = [
        register_customer(f"racer{i}@example.com", "Racer-pass-123", full_name=f"Racer {i}")
        for i in range(50)
    ]
    barrier = threading.Barrier(50)

    def attempt(index: int) -> bool:
        try:
            barrier.wait()
            place_order(buyers[index], [LineRequest(product.pk, 1)])
            return True
        except OutOfStock:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    assert outcomes.count(True) == 10
    assert stock(product) == 0
    assert Order.objects.count() == 10


def test_fifty_concurrent_http_orders_for_ten_units_sell_exactly_ten(
    pg_monolith: MonolithServer,
) -> None:
    """The same race through gunicorn (2 workers x 8 threads) and the JSON API."""
    with httpx.Client(base_url=pg_monolith.base_url, timeout=30) as api:
        product_id = api.get("/api/catalog/products/", params={"in_stock": "true"}).json()[
            "results"
        ][0]["id"]
        with psycopg.connect(psql_url(pg_monolith.database_url), autocommit=True) as conn:
            conn.execute(
                "UPDATE catalog_stocklevel SET on_hand = 10 WHERE product_id = %s", (product_id,)
            )
        tokens = []
        for i in range(50):
            response = api.post(
                "/api/customers/",
                json={
                    "email": f"http-racer-{i}@example.com",
                    "password": "Racer-pass-123",
                    "full_name": f"Racer {i}",
                },
            )
            assert response.status_code == 201, response.text
            tokens.append(response.json()["token"])

        barrier = threading.Barrier(50)

        def attempt(token: str) -> int:
            with httpx.Client(base_url=pg_monolith.base_url, timeout=60) as client:
                barrier.wait()
                response = client.post(
                    "/api/orders/",
                    json={"lines": [{"product": product_id, "quantity": 1}]},
                    headers={"Authorization": f"Token {token}"},
                )
                return response.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(attempt, tokens))

        assert sorted(set(statuses)) == [201, 409]
        assert statuses.count(201) == 10
        assert api.get(f"/api/catalog/products/{product_id}/").json()["stock"] == 0
        with psycopg.connect(psql_url(pg_monolith.database_url)) as conn:
            sold = conn.execute(
                "SELECT coalesce(sum(quantity), 0) FROM orders_orderline l "
                "JOIN orders_order o ON o.id = l.order_id JOIN customers_customer c "
                "ON c.id = o.customer_id JOIN auth_user u ON u.id = c.user_id "
                "WHERE l.product_id = %s AND u.email LIKE 'http-racer-%%'",
                (product_id,),
            ).fetchone()
        assert sold == (10,)
