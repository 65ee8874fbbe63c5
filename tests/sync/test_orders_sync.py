"""Orders go both ways during the canary: the monolith's changes reach the orders table
(outbox → SQS FIFO → the function's SQS handler with partial batch failures), the
function's reach the monolith (its relay → SQS → the monolith's inbox), each version once,
never echoed, with ids that never collide, and concurrent changes of one order settled
alike on both sides, counted, and leaving stock right."""

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
from extracted.orders import sync as lambda_sync
from extracted.orders.handler import services_from_environment
from extracted.orders.owner import Owner
from extracted.orders.relay import publish_pending
from extracted.orders.store import create_table
from facade import aws_local
from facade.routing.loader import load_table
from facade.sync.event_source import EventSource, sqs_event
from facade.sync.queues import create_queues
from tests.extracted.test_orders_lambda import _call, _event, _token
from tests.servers import (
    ORDERS_ID_BASE,
    SERVICE_TOKEN,
    MonolithServer,
    manage,
    monolith_server,
    orders_store,
    psql_url,
    scratch_database,
)

pytestmark = pytest.mark.postgresql


class TwoWay:
    """A monolith of its own, an orders table of its own, and both order streams."""

    def __init__(self, tmp: Path, endpoints: aws_local.Endpoints, monolith: MonolithServer) -> None:
        self.table = f"orders-{uuid.uuid4().hex[:8]}"
        suffix = uuid.uuid4().hex[:8]
        monolith_digest = "'{python} -m monolith.manage sync_digest'"
        lambda_digest = "'{python} -m extracted.orders.sync digest'"
        self.routing = tmp / "routing.yaml"
        self.routing.write_text(
            "version: 1\nbackends:\n"
            "  monolith:\n    kind: monolith\n    url: 'http://127.0.0.1:1'\n"
            f"    local: {{env: {{DATABASE_URL: '{monolith.database_url}'}}}}\n"
            "  orders:\n    kind: lambda\n    handler: 'extracted.orders.handler:lambda_handler'\n"
            f"    local: {{env: {{ORDERS_TABLE: '{self.table}'}}}}\n"
            "routes: []\n"
            "sync:\n"
            f"  orders-to-lambda:\n    from: monolith\n    to: orders\n"
            f"    queue: tl-{suffix}.fifo\n    max_receives: 2\n    visibility_timeout: 1\n"
            "    two_way:\n      reverse: orders-to-monolith\n"
            "      lifecycle: {field: status, order: [placed, paid, cancelled, shipped]}\n"
            f"      ids: {{split: {ORDERS_ID_BASE + 1}}}\n"
            "    commands:\n"
            "      backfill: '{python} -m monolith.manage outbox_backfill'\n"
            "      emit: '{python} -m monolith.manage outbox_emit'\n"
            "      outbox_status: '{python} -m monolith.manage sync_status --json'\n"
            "      inbox_status: '{python} -m extracted.orders.sync status --json'\n"
            f"      source_digest: {monolith_digest}\n"
            f"      target_digest: {lambda_digest}\n"
            f"  orders-to-monolith:\n    from: orders\n    to: monolith\n"
            f"    queue: tm-{suffix}.fifo\n    visibility_timeout: 1\n"
            "    commands:\n"
            "      outbox_status: '{python} -m extracted.orders.sync status --json'\n"
            "      inbox_status: '{python} -m monolith.manage sync_status --json'\n"
            f"      source_digest: {lambda_digest}\n"
            f"      target_digest: {monolith_digest}\n"
            f"local:\n  aws: {{endpoint: '{endpoints.aws}', sqs: '{endpoints.sqs}', "
            f"dynamodb: '{endpoints.dynamodb}'}}\n"
        )
        table = load_table(self.routing)
        self.sqs = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        self.to_lambda, self.to_lambda_dlq = create_queues(
            self.sqs, table.stream("orders-to-lambda")
        )
        self.to_monolith, _ = create_queues(self.sqs, table.stream("orders-to-monolith"))
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=endpoints.dynamodb, **aws_local.CREDENTIALS
        )
        create_table(dynamodb, self.table)
        self.store = orders_store(self.table, dynamodb)
        self.monolith = monolith
        self.env = {
            **endpoints.environment(),
            "DATABASE_URL": monolith.database_url,
            "STRANGLER_ROUTING": str(self.routing),
            "ORDERS_TABLE": self.table,
            "STRANGLER_SERVICE_TOKEN": SERVICE_TOKEN,
        }
        self.services = api.Services(self.store, Owner(monolith.base_url, SERVICE_TOKEN, timeout=2))
        self.shop = httpx.Client(base_url=monolith.base_url, timeout=30)

    # -- moving changes ------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        return manage(*args, env=self.env)

    def to_the_lambda(self) -> EventSource:
        """Publish the monolith's outbox, then deliver the queue to the function's handler
        as its event source mapping does, until nothing is left."""
        self.manage("outbox_relay", "--once", "--routing", str(self.routing))
        lambda_sync.use_store(self.store)
        source = EventSource(
            self.sqs, self.to_lambda, lambda_sync.lambda_handler, wait=1, backoff=0
        )
        try:
            source.drain(lambda: False)
        finally:
            lambda_sync.use_store(None)
        return source

    def to_the_monolith(self) -> str:
        while publish_pending(self.store, self.sqs, self.to_monolith, stream="orders-to-monolith"):
            pass
        return self.manage(
            "inbox_consumer", "--drain", "--wait", "1", "--stream", "orders-to-monolith"
        )

    def settle(self) -> None:
        """Both directions until neither side has anything left to send."""
        for _ in range(4):
            self.to_the_lambda()
            self.to_the_monolith()

    # -- reading either side ---------------------------------------------------------------

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(psql_url(self.monolith.database_url), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def stock(self, product: int) -> int:
        return int(
            self.sql("SELECT on_hand FROM catalog_stocklevel WHERE product_id = %s", product)[0][0]
        )

    def verify(self, *extra: str) -> tuple[int, dict[str, Any]]:
        result = subprocess.run(
            [sys.executable, "-m", "facade.cli", "sync", "verify", "orders-to-lambda",
             "--routing", str(self.routing), "--json", *extra],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        assert result.stdout, result.stderr
        return result.returncode, json.loads(result.stdout)

    def lambda_call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        api.configure(lambda: self.services)
        return _call(_event(method, path, token, body))


@pytest.fixture(scope="module")
def two_way(
    tmp_path_factory: pytest.TempPathFactory, aws_endpoints: aws_local.Endpoints
) -> Iterator[TwoWay]:
    with scratch_database("strangler_twoway") as url, monolith_server(url, workers=1) as monolith:
        both = TwoWay(tmp_path_factory.mktemp("two-way"), aws_endpoints, monolith)
        both.manage("outbox_backfill", "orders.Order")  # the seeded orders, into the sync
        both.settle()
        yield both
        both.shop.close()
    api.configure(services_from_environment)


def _product(both: TwoWay, units: int) -> int:
    (product,) = both.sql(
        "SELECT id FROM catalog_product WHERE is_active ORDER BY random() LIMIT 1"
    )[0]
    both.sql("UPDATE catalog_stocklevel SET on_hand = %s WHERE product_id = %s", units, product)
    return int(product)


def _place_on_monolith(both: TwoWay, token: str, product: int, quantity: int = 1) -> dict[str, Any]:
    response = both.shop.post(
        "/api/orders/",
        json={"lines": [{"product": product, "quantity": quantity}]},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_backfilled_monolith_orders_are_in_the_table_and_verify_is_clean(
    two_way: TwoWay,
) -> None:
    (count,) = two_way.sql("SELECT count(*) FROM orders_order")[0]
    assert count >= 200
    assert sum(1 for _ in two_way.store.every_order()) == count
    code, report = two_way.verify()
    assert (code, report["drift"]) == (0, 0), report
    assert report["entities"]["orders.Order"]["source_rows"] == count


def test_orders_written_on_both_sides_reach_the_other_once_without_echo(two_way: TwoWay) -> None:
    customer, token = _token(two_way.shop)
    product = _product(two_way, 20)
    on_monolith = _place_on_monolith(two_way, token, product, 2)
    status, on_lambda = two_way.lambda_call(
        "POST", "/api/orders/", token, {"lines": [{"product": product, "quantity": 3}]}
    )
    assert status == 201, on_lambda
    assert on_monolith["id"] < ORDERS_ID_BASE < on_lambda["id"]  # disjoint id ranges
    assert two_way.stock(product) == 15

    two_way.settle()
    # each side now shows the other's order to its customer
    status, seen_there = two_way.lambda_call("GET", f"/api/orders/{on_monolith['id']}/", token)
    assert (status, seen_there["total"]) == (200, on_monolith["total"])
    mine = two_way.shop.get("/api/orders/", headers={"Authorization": f"Token {token}"}).json()
    assert {o["id"] for o in mine["results"]} == {on_monolith["id"], on_lambda["id"]}

    # and changes each the other's order: pay the monolith's there, cancel the Lambda's here
    status, paid = two_way.lambda_call("POST", f"/api/orders/{on_monolith['id']}/pay/", token)
    assert (status, paid["status"]) == (200, "paid")
    cancelled = two_way.shop.post(
        f"/api/orders/{on_lambda['id']}/cancel/", headers={"Authorization": f"Token {token}"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert two_way.stock(product) == 18  # the Lambda's reservation, given back once
    two_way.settle()

    rows = two_way.sql(
        "SELECT id, status, customer_id FROM orders_order WHERE id = ANY(%s) ORDER BY id",
        [on_monolith["id"], on_lambda["id"]],
    )
    assert rows == [(on_monolith["id"], "paid", customer), (on_lambda["id"], "cancelled", customer)]
    _, there = two_way.lambda_call("GET", f"/api/orders/{on_lambda['id']}/", token)
    assert there["status"] == "cancelled"
    assert two_way.stock(product) == 18
    # nothing applied is published back: one more round moves nothing
    assert "published 0 events" in two_way.manage(
        "outbox_relay", "--once", "--routing", str(two_way.routing)
    )
    assert two_way.store.pending() == []
    code, report = two_way.verify()
    assert (code, report["drift"]) == (0, 0), report


def _conflicts(both: TwoWay) -> tuple[int, int]:
    """(recorded by the monolith, recorded by the orders table)."""
    (here,) = both.sql("SELECT count(*) FROM strangler_sync_syncconflict")[0]
    return int(here), both.store.conflicts("orders-to-lambda")


def _lambda_conflict(both: TwoWay, order_id: int) -> dict[str, Any]:
    answer = both.store.client.query(
        TableName=both.table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CONFLICT#{order_id}"}},
    )
    (item,) = answer["Items"]
    return {name: json.loads(item[name]["S"]) for name in ("lost", "won")}


@pytest.mark.parametrize("cancelled_on", ["monolith", "lambda"])
def test_concurrent_changes_of_one_order_settle_alike_count_once_and_keep_stock_right(
    two_way: TwoWay, cancelled_on: str
) -> None:
    _, token = _token(two_way.shop)
    product = _product(two_way, 10)
    order = _place_on_monolith(two_way, token, product, 4)
    two_way.settle()
    before = _conflicts(two_way)
    # paid on one side and cancelled on the other, before either hears of the other
    monolith_action, lambda_action = ("cancel", "pay") if cancelled_on == "monolith" else (
        "pay", "cancel"
    )  # fmt: skip
    status, changed = two_way.lambda_call(
        "POST", f"/api/orders/{order['id']}/{lambda_action}/", token
    )
    assert status == 200, changed
    answer = two_way.shop.post(
        f"/api/orders/{order['id']}/{monolith_action}/", headers={"Authorization": f"Token {token}"}
    )
    assert answer.status_code == 200, answer.text
    # the monolith's own order took its stock directly: the monolith gives it back when
    # the cancellation is made there or reaches it
    assert two_way.stock(product) == (10 if cancelled_on == "monolith" else 6)

    two_way.settle()
    # a cancellation is final: both sides end cancelled, and the stock came back once
    assert two_way.sql("SELECT status FROM orders_order WHERE id = %s", order["id"]) == [
        ("cancelled",)
    ]
    _, there = two_way.lambda_call("GET", f"/api/orders/{order['id']}/", token)
    assert there["status"] == "cancelled"
    assert two_way.stock(product) == 10
    # counted once, by the side whose payment lost, which keeps both states for review
    after = _conflicts(two_way)
    if cancelled_on == "monolith":
        assert after == (before[0], before[1] + 1)
        record = _lambda_conflict(two_way, order["id"])
        assert (record["lost"]["state"]["status"], record["won"]["state"]["status"]) == (
            "paid", "cancelled"
        )  # fmt: skip
    else:
        assert after == (before[0] + 1, before[1])
        (lost, won) = two_way.sql(
            "SELECT lost, won FROM strangler_sync_syncconflict WHERE object_id = %s",
            str(order["id"]),
        )[0]
        assert (lost["state"]["status"], won["state"]["status"]) == ("paid", "cancelled")
    code, report = two_way.verify()
    assert (code, report["drift"]) == (0, 0), report
    status_report = subprocess.run(
        [sys.executable, "-m", "facade.cli", "sync", "status", "--json",
         "--routing", str(two_way.routing)],
        env={**os.environ, **two_way.env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert status_report.returncode == 0, status_report.stderr
    figures = json.loads(status_report.stdout)
    assert figures["orders-to-monolith"]["conflicts"] == after[0]
    assert figures["orders-to-lambda"]["conflicts"] == after[1]


def test_a_cancel_whose_release_fails_stands_and_the_sync_gives_the_stock_back(
    two_way: TwoWay,
) -> None:
    _, token = _token(two_way.shop)
    product = _product(two_way, 6)
    status, order = two_way.lambda_call(
        "POST", "/api/orders/", token, {"lines": [{"product": product, "quantity": 2}]}
    )
    assert status == 201, order
    assert two_way.stock(product) == 4
    broken = api.Services(two_way.store, Owner("http://127.0.0.1:9", SERVICE_TOKEN, timeout=1))
    broken.owner._identities.update(two_way.services.owner._identities)  # only release fails
    api.configure(lambda: broken)
    status, cancelled = _call(_event("POST", f"/api/orders/{order['id']}/cancel/", token))
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert two_way.stock(product) == 4
    two_way.settle()
    assert two_way.stock(product) == 6
    two_way.settle()
    assert two_way.stock(product) == 6


def test_redelivered_and_overtaken_changes_change_nothing(two_way: TwoWay) -> None:
    _, token = _token(two_way.shop)
    order = _place_on_monolith(two_way, token, _product(two_way, 5))
    two_way.to_the_lambda()
    first = two_way.store.get(order["id"])
    assert first is not None
    stale = {
        "aggregate": "orders.Order", "id": str(order["id"]), "version": 1, "rank": 0,
        "base": None, "kind": "upsert", "origin": "monolith",
        "data": {**order, "status": "placed", "reservation": None},
    }  # fmt: skip
    two_way.shop.post(
        f"/api/orders/{order['id']}/pay/", headers={"Authorization": f"Token {token}"}
    )
    two_way.to_the_lambda()
    for _ in range(2):  # redelivered twice, after the newer change
        two_way.sqs.send_message(
            QueueUrl=two_way.to_lambda, MessageBody=json.dumps(stale),
            MessageGroupId=f"orders.Order:{order['id']}", MessageDeduplicationId=uuid.uuid4().hex,
        )  # fmt: skip
    source = two_way.to_the_lambda()
    assert (source.delivered, source.failed) == (2, 0)
    held = two_way.store.get(order["id"])
    assert held is not None
    assert held["status"] == "paid"


def test_a_malformed_change_fails_alone_in_order_and_ends_in_the_dead_letter_queue(
    two_way: TwoWay,
) -> None:
    _, token = _token(two_way.shop)
    good = _place_on_monolith(two_way, token, _product(two_way, 5))
    two_way.manage("outbox_relay", "--once", "--routing", str(two_way.routing))
    poison_body = json.dumps({"aggregate": "orders.Order", "id": "7", "kind": "upsert"})
    two_way.sqs.send_message(
        QueueUrl=two_way.to_lambda, MessageBody=poison_body,
        MessageGroupId="orders.Order:7", MessageDeduplicationId=uuid.uuid4().hex,
    )  # fmt: skip
    messages = two_way.sqs.receive_message(
        QueueUrl=two_way.to_lambda, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    # the function reports the poison alone: FIFO holds back only its own order
    lambda_sync.use_store(two_way.store)
    try:
        event = sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:tl", "us-east-1")
        answer = lambda_sync.lambda_handler(event, None)
    finally:
        lambda_sync.use_store(None)
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert failed == [m["MessageId"] for m in messages if m["Body"] == poison_body]
    assert two_way.store.get(good["id"]) is not None  # applied before the poison
    for m in messages:  # as the event source mapping does: keep only the failures
        if m["MessageId"] in failed:
            two_way.sqs.change_message_visibility(
                QueueUrl=two_way.to_lambda, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            two_way.sqs.delete_message(QueueUrl=two_way.to_lambda, ReceiptHandle=m["ReceiptHandle"])
    two_way.to_the_lambda()  # the second receive fails again: max_receives 2 → the DLQ
    dead = two_way.sqs.receive_message(QueueUrl=two_way.to_lambda_dlq, WaitTimeSeconds=1)
    assert [m["Body"] for m in dead.get("Messages", [])] == [poison_body]
