"""The orders Lambda: no oversell through the Lambda path, idempotent retries, and
nothing left reserved or half-cancelled when a step fails."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from extracted.orders import api
from extracted.orders.handler import lambda_handler
from extracted.orders.owner import Owner
from extracted.orders.store import OrderStore
from facade import aws_local
from facade.aws_local import Endpoints
from tests.servers import (
    ORDERS_ID_BASE,
    SERVICE_TOKEN,
    MonolithServer,
    orders_store,
    psql_url,
)

pytestmark = pytest.mark.postgresql
EVENT = Path(__file__).parent.parent / "facade" / "events" / "alb_event.json"


def _sql(server: MonolithServer, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(psql_url(server.database_url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _product_with(server: MonolithServer, units: int) -> int:
    """An active product whose stock is set to ``units``."""
    (product_id,) = _sql(
        server, "SELECT id FROM catalog_product WHERE is_active ORDER BY random() LIMIT 1"
    )[0]
    _sql(
        server,
        "UPDATE catalog_stocklevel SET on_hand = %s WHERE product_id = %s",
        units,
        product_id,
    )
    return int(product_id)


def _stock(server: MonolithServer, product_id: int) -> int:
    return int(
        _sql(server, "SELECT on_hand FROM catalog_stocklevel WHERE product_id = %s", product_id)[0][
            0
        ]
    )


def _reservations(server: MonolithServer, key_like: str = "%") -> list[tuple[str, str]]:
    rows = _sql(
        server, "SELECT key, status FROM catalog_stockreservation WHERE key LIKE %s", key_like
    )
    return [(str(k), str(s)) for k, s in rows]


def _token(shop: httpx.Client) -> tuple[int, str]:
    email = f"lambda-{uuid.uuid4().hex[:10]}@example.com"
    response = shop.post(
        "/api/customers/",
        json={"email": email, "password": "Lambda-pass-" + uuid.uuid4().hex[:8], "full_name": "L"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"]), str(response.json()["token"])


@pytest.fixture(scope="module")
def shop(pg_monolith: MonolithServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pg_monolith.base_url, timeout=30) as client:
        yield client


def _services(endpoint: str, table: str, owner_url: str) -> api.Services:
    client = boto3.client("dynamodb", endpoint_url=endpoint, **aws_local.CREDENTIALS)
    return api.Services(
        orders_store(table, client),
        Owner(owner_url, SERVICE_TOKEN, timeout=2),
    )


@pytest.fixture
def in_process(pg_monolith: MonolithServer, orders_table: tuple[Endpoints, str]) -> Iterator[None]:
    """The handler, called in this process, configured for the test monolith and table."""
    endpoints, table = orders_table
    endpoint = endpoints.dynamodb
    api.configure(lambda: _services(endpoint, table, pg_monolith.base_url))
    yield
    api.configure(lambda: _services(endpoint, table, pg_monolith.base_url))


def _event(method: str, path: str, token: str, body: Any = None, **headers: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT.read_text())
    event["httpMethod"] = method
    event["path"] = path
    event["queryStringParameters"] = {}
    event["headers"] = {
        "host": "shop.example.com",
        "authorization": f"Token {token}",
        "content-type": "application/json",
        "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
        **{k.lower().replace("_", "-"): v for k, v in headers.items()},
    }
    event["body"] = json.dumps(body) if body is not None else ""
    event["isBase64Encoded"] = False
    return event


def _call(event: dict[str, Any]) -> tuple[int, Any]:
    result = lambda_handler(event, None)
    return int(result["statusCode"]), json.loads(result["body"] or "null")


def test_fifty_concurrent_orders_through_the_facade_sell_exactly_ten(
    pg_monolith: MonolithServer, facade_orders: str, shop: httpx.Client
) -> None:
    product = _product_with(pg_monolith, 10)
    customer, token = _token(shop)
    barrier = threading.Barrier(50)

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=facade_orders, timeout=60) as client:
            barrier.wait()
            return client.post(
                "/api/orders/",
                json={"lines": [{"product": product, "quantity": 1}]},
                headers={"Authorization": f"Token {token}"},
            )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(attempt, range(50)))

    assert all(r.headers["x-strangler-backend"] == "orders" for r in responses)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 40, [r.text for r in responses if r.status_code >= 500]
    assert all(
        r.json()["error"]["code"] == "out_of_stock" for r in responses if r.status_code == 409
    )
    assert _stock(pg_monolith, product) == 0
    with httpx.Client(base_url=facade_orders, timeout=30) as client:
        mine = client.get("/api/orders/", headers={"Authorization": f"Token {token}"}).json()
    assert mine["count"] == 10
    assert {o["customer"] for o in mine["results"]} == {customer}
    assert all(o["id"] > ORDERS_ID_BASE for o in mine["results"])


@pytest.mark.usefixtures("in_process")
def test_a_retried_invocation_reserves_once_and_returns_the_same_order(
    pg_monolith: MonolithServer, shop: httpx.Client
) -> None:
    product = _product_with(pg_monolith, 20)
    _, token = _token(shop)
    body = {"lines": [{"product": product, "quantity": 3}]}
    event = _event("POST", "/api/orders/", token, body, Idempotency_Key=uuid.uuid4().hex)

    first_status, first = _call(event)
    again_status, again = _call(copy.deepcopy(event))  # Lambda retries the same event

    assert (first_status, again_status) == (201, 201)
    assert again == first
    assert _stock(pg_monolith, product) == 17
    reserved = [r for r in _reservations(pg_monolith) if r[1] == "reserved"]
    keys_for_order = [k for k, _ in reserved if k.startswith("order-")]
    assert len(set(keys_for_order)) == len(keys_for_order)

    # A new key is a new order; concurrent retries of one key still make one.
    other = _event("POST", "/api/orders/", token, body, Idempotency_Key=uuid.uuid4().hex)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: _call(copy.deepcopy(other)), range(6)))
    created = [b for s, b in results if s == 201]
    assert created
    assert all(s in (201, 409, 503) for s, _ in results)
    assert len({b["id"] for b in created}) == 1
    assert created[0]["id"] != first["id"]
    assert _stock(pg_monolith, product) == 14


@pytest.mark.usefixtures("in_process")
def test_without_a_key_the_event_request_id_deduplicates_retries(
    pg_monolith: MonolithServer, shop: httpx.Client
) -> None:
    product = _product_with(pg_monolith, 5)
    _, token = _token(shop)
    event = _event("POST", "/api/orders/", token, {"lines": [{"product": product, "quantity": 1}]})
    _, first = _call(event)
    _, retried = _call(copy.deepcopy(event))
    _, fresh = _call(
        _event("POST", "/api/orders/", token, {"lines": [{"product": product, "quantity": 1}]})
    )
    assert retried["id"] == first["id"]
    assert fresh["id"] != first["id"]
    assert _stock(pg_monolith, product) == 3


class _StoreThatFailsToSave(OrderStore):
    def put_new(self, order: Mapping[str, Any]) -> bool:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem"
        )


def test_a_failed_save_releases_the_reservation(
    pg_monolith: MonolithServer, orders_table: tuple[Endpoints, str], shop: httpx.Client
) -> None:
    endpoints, table = orders_table
    endpoint = endpoints.dynamodb
    client = boto3.client("dynamodb", endpoint_url=endpoint, **aws_local.CREDENTIALS)
    failing = api.Services(
        orders_store(table, client, _StoreThatFailsToSave),
        Owner(pg_monolith.base_url, SERVICE_TOKEN),
    )
    api.configure(lambda: failing)
    try:
        product = _product_with(pg_monolith, 4)
        _, token = _token(shop)
        key = uuid.uuid4().hex
        event = _event(
            "POST", "/api/orders/", token,
            {"lines": [{"product": product, "quantity": 2}]}, Idempotency_Key=key,
        )  # fmt: skip
        status, body = _call(event)
        assert status == 503, body
        assert body["error"]["code"] == "service_unavailable"
        assert _stock(pg_monolith, product) == 4
        released = [s for _, s in _reservations(pg_monolith)]
        assert "released" in released
        # the key's reservation is spent: a retry of this request cannot take stock either
        status, body = _call(copy.deepcopy(event))
        assert status == 409, body
        assert _stock(pg_monolith, product) == 4
    finally:
        api.configure(lambda: _services(endpoint, table, pg_monolith.base_url))


def test_an_unreachable_order_store_is_a_503(
    pg_monolith: MonolithServer, shop: httpx.Client
) -> None:
    api.configure(lambda: _services("http://127.0.0.1:9", "orders", pg_monolith.base_url))
    try:
        _, token = _token(shop)
        status, body = _call(_event("GET", "/api/orders/", token))
    finally:
        api.configure(lambda: _services("http://127.0.0.1:9", "orders", pg_monolith.base_url))
    assert status == 503, body
    assert body["error"]["code"] == "service_unavailable"
