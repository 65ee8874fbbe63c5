"""Orders placed and changed on the orders Lambda flow back into the monolith's tables:
once per version, with the Lambda's ids, and never published back (no echo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest

from extracted.orders import api
from extracted.orders.handler import services_from_environment
from extracted.orders.owner import Owner
from extracted.orders.relay import publish_pending
from extracted.orders.store import OrderStore, create_table
from facade import aws_local
from facade.routing.loader import load_table
from facade.sync.queues import create_queues
from tests.extracted.test_orders_lambda import _call, _event, _token
from tests.servers import ORDERS_ID_BASE, SERVICE_TOKEN, MonolithServer, psql_url

pytestmark = pytest.mark.postgresql


class Back:
    def __init__(
        self, tmp: Path, endpoints: aws_local.Endpoints, table: str, monolith: MonolithServer
    ) -> None:
        self.routing = tmp / "routing.yaml"
        self.routing.write_text(
            "version: 1\nbackends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
            "  orders: {kind: lambda, handler: 'extracted.orders.handler:lambda_handler'}\n"
            "routes: []\n"
            "sync:\n  orders: {from: orders, to: monolith, "
            f"queue: o-{uuid.uuid4().hex[:8]}.fifo}}\n"
        )
        self.sqs = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        self.url, _ = create_queues(self.sqs, load_table(self.routing).stream("orders"))
        client = boto3.client("dynamodb", endpoint_url=endpoints.dynamodb, **aws_local.CREDENTIALS)
        create_table(client, table)  # its own: other tests leave unpublished orders behind
        self.store = OrderStore(table, id_base=ORDERS_ID_BASE, client=client)
        self.monolith = monolith
        self.env = {**endpoints.environment(), "DATABASE_URL": monolith.database_url,
                    "STRANGLER_ROUTING": str(self.routing)}  # fmt: skip
        api.configure(lambda: api.Services(self.store, Owner(monolith.base_url, SERVICE_TOKEN)))

    def publish(self) -> int:
        total = 0
        while published := publish_pending(self.store, self.sqs, self.url):
            total += published
        return total

    def consume(self) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "monolith.manage", "inbox_consumer", "--drain", "--wait", "1"],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(psql_url(self.monolith.database_url), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def back(
    tmp_path: Path, aws_endpoints: aws_local.Endpoints, pg_monolith: MonolithServer
) -> Iterator[Back]:
    yield Back(tmp_path, aws_endpoints, f"orders-{uuid.uuid4().hex[:8]}", pg_monolith)
    api.configure(services_from_environment)


@pytest.fixture
def shop(pg_monolith: MonolithServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pg_monolith.base_url, timeout=30) as client:
        yield client


def test_lambda_orders_reach_the_monolith_once_per_version(back: Back, shop: httpx.Client) -> None:
    customer, token = _token(shop)
    product = shop.get("/api/catalog/products/", params={"in_stock": "true"}).json()["results"][0]
    line = {"lines": [{"product": product["id"], "quantity": 1}]}
    placed = [_call(_event("POST", "/api/orders/", token, line))[1] for _ in range(3)]
    ids = [o["id"] for o in placed]
    assert all(i > ORDERS_ID_BASE for i in ids)
    status, _ = _call(_event("POST", f"/api/orders/{ids[0]}/pay/", token))
    assert status == 200
    status, _ = _call(_event("POST", f"/api/orders/{ids[1]}/cancel/", token))
    assert status == 200

    assert back.publish() == 3  # the newest state of each order, once
    assert back.publish() == 0
    output = back.consume()
    assert "3 applied" in output
    rows = back.rows(
        "SELECT id, customer_id, status, total FROM orders_order WHERE id = ANY(%s) ORDER BY id",
        ids,
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (ids[0], customer, "paid"), (ids[1], customer, "cancelled"), (ids[2], customer, "placed")
    ]  # fmt: skip
    assert str(rows[0][3]) == placed[0]["total"]
    lines = back.rows(
        "SELECT order_id, product_id, quantity FROM orders_orderline WHERE order_id = ANY(%s)", ids
    )
    assert sorted(lines) == sorted((i, product["id"], 1) for i in ids)

    # the monolith's API now shows the Lambda's orders to their customer
    mine = shop.get("/api/orders/", headers={"Authorization": f"Token {token}"}).json()
    assert {o["id"] for o in mine["results"]} >= set(ids)
    assert {o["id"]: o["status"] for o in mine["results"]}[ids[0]] == "paid"

    # a later change flows again; replaying an old version changes nothing
    status, _ = _call(_event("POST", f"/api/orders/{ids[2]}/cancel/", token))
    assert back.publish() == 1
    back.sqs.send_message(
        QueueUrl=back.url,
        MessageBody=json.dumps({"aggregate": "orders.Order", "id": str(ids[2]), "version": 1,
                                "kind": "upsert", "data": placed[2], "origin": "orders-lambda"}),
        MessageGroupId=f"orders.Order:{ids[2]}", MessageDeduplicationId=uuid.uuid4().hex,
    )  # fmt: skip
    output = back.consume()
    assert "1 applied, 1 already applied" in output
    assert back.rows("SELECT status FROM orders_order WHERE id = %s", ids[2]) == [("cancelled",)]
    # applied changes are not published by the monolith's outbox (no echo)
    assert back.rows(
        "SELECT count(*) FROM outbox_outboxevent WHERE aggregate LIKE 'orders.%%'"
    ) == [(0,)]
