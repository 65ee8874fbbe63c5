"""The catalog service's consumer, as a process: at-most-once effects, retries for
entities whose parent arrives later, poison to the DLQ, and a whole round trip from the
monolith's outbox to the catalog service's database."""

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

from facade import aws_local
from facade.routing.loader import load_table
from facade.sync.queues import create_queues
from tests.servers import SAMPLE_ROUTING, MonolithServer, manage, psql_url, scratch_database

pytestmark = pytest.mark.postgresql
CATALOG = "extracted.catalog.manage"


class Sync:
    def __init__(self, tmp: Path, endpoints: aws_local.Endpoints, database: str) -> None:
        self.queue = f"t-{uuid.uuid4().hex[:10]}.fifo"
        self.routing = tmp / "routing.yaml"
        self.routing.write_text(
            "version: 1\n"
            "backends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
            "  catalog: {kind: ecs, url: 'http://127.0.0.1:2'}\n"
            "routes: []\n"
            f"sync:\n  catalog: {{from: monolith, to: catalog, queue: {self.queue}, "
            "max_receives: 2}\n"
            f"local:\n  aws: {{endpoint: '{endpoints.aws}', sqs: '{endpoints.sqs}'}}\n"
        )
        self.client = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        self.url, self.dlq = create_queues(self.client, load_table(self.routing).stream("catalog"))
        self.database = database
        self.env = {
            **endpoints.environment(),
            "CATALOG_DATABASE_URL": database,
            "STRANGLER_ROUTING": str(self.routing),
        }

    def send(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.client.send_message(
                QueueUrl=self.url,
                MessageBody=json.dumps(body),
                MessageGroupId=f"{body.get('aggregate')}:{body.get('id')}",
                MessageDeduplicationId=uuid.uuid4().hex,
            )

    def consume(self) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "extracted.catalog.manage", "inbox_consumer",
             "--stream", "catalog", "--drain", "--wait", "1"],
            env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(psql_url(self.database), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def sync(tmp_path: Path, aws_endpoints: aws_local.Endpoints) -> Iterator[Sync]:
    with scratch_database("strangler_sync") as database:
        catalog = {"CATALOG_DATABASE_URL": database}
        manage("migrate", "--noinput", "-v", "0", env=catalog, module=CATALOG)
        yield Sync(tmp_path, aws_endpoints, database)


def _event(aggregate: str, id_: int, version: int, data: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "event": str(uuid.uuid4()), "stream": "catalog", "aggregate": aggregate, "id": str(id_),
        "version": version, "kind": "upsert" if data is not None else "delete", "data": data,
        "origin": "monolith", "at": "2026-11-22T10:00:00+00:00",
    }  # fmt: skip


def _category(id_: int, version: int, name: str) -> dict[str, Any]:
    data = {"id": id_, "name": name, "slug": f"c{id_}", "parent_id": None, "description": ""}
    return _event("catalog.Category", id_, version, data)


def _product(id_: int, version: int, name: str, category: int) -> dict[str, Any]:
    data = {
        "id": id_, "sku": f"S{id_}", "name": name, "slug": f"p{id_}", "description": "",
        "category_id": category, "price": "9.50", "currency": "EUR", "is_active": True,
        "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
    return _event("catalog.Product", id_, version, data)


def test_duplicates_and_older_versions_change_nothing(sync: Sync) -> None:
    sync.send(
        _category(1, 1, "Kitchen"),
        _product(10, 2, "first", 1),
        _product(10, 5, "newest", 1),
        _product(10, 5, "newest", 1),  # a duplicate delivery
        _product(10, 3, "overtaken", 1),  # older than what is applied
    )
    sync.consume()
    assert sync.rows("SELECT name FROM catalog_product WHERE id = 10") == [("newest",)]
    assert sync.rows(
        "SELECT version FROM strangler_sync_appliedversion WHERE aggregate = 'catalog.Product'"
    ) == [(5,)]
    sync.send(_event("catalog.Product", 10, 6, None))
    sync.consume()
    assert sync.rows("SELECT count(*) FROM catalog_product") == [(0,)]
    sync.send(_product(10, 4, "resurrected by a late event", 1))
    sync.consume()
    assert sync.rows("SELECT count(*) FROM catalog_product") == [(0,)]


def test_a_product_that_arrives_before_its_category_is_applied_on_a_retry(sync: Sync) -> None:
    sync.send(_product(20, 11, "orphan for now", 77))
    sync.send(_category(77, 10, "Late"))
    sync.consume()
    assert sync.rows("SELECT name, category_id FROM catalog_product") == [("orphan for now", 77)]


def test_a_poison_message_ends_in_the_dead_letter_queue(sync: Sync) -> None:
    sync.send({"aggregate": "catalog.Product", "id": "1", "version": "not a number"})
    sync.send(_category(2, 1, "fine"))
    output = sync.consume()
    assert "can never apply" in output
    assert sync.rows("SELECT name FROM catalog_category") == [("fine",)]
    dead = sync.client.receive_message(QueueUrl=sync.dlq, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in dead.get("Messages", [])]
    assert bodies == [{"aggregate": "catalog.Product", "id": "1", "version": "not a number"}]


def strangler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facade.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_message_that_keeps_failing_is_replayed_from_the_dlq_once_fixed(sync: Sync) -> None:
    sync.send(_product(30, 21, "waits for its category", 99))  # category 99 never came
    sync.consume()
    assert sync.rows("SELECT count(*) FROM catalog_product") == [(0,)]
    listed = strangler("sync", "dlq", "list", "catalog", "-f", str(sync.routing), "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)["dead_letters"]
    assert [(letter["entity"], letter["group"]) for letter in letters] == [
        ("catalog.Product:30", "catalog.Product:30")
    ]
    shown = strangler("sync", "dlq", "show", "catalog", letters[0]["message_id"], "-f",
                      str(sync.routing))  # fmt: skip
    assert json.loads(json.loads(shown.stdout)["body"])["version"] == 21

    sync.send(_category(99, 20, "fixed"))  # the cause, fixed
    sync.consume()
    unknown = strangler("sync", "dlq", "replay", "catalog", "--id", "nope", "-f", str(sync.routing))
    assert unknown.returncode == 1
    replayed = strangler("sync", "dlq", "replay", "catalog", "--all", "-f", str(sync.routing))
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 message(s)" in replayed.stdout
    sync.consume()
    assert sync.rows("SELECT name FROM catalog_product WHERE id = 30") == [
        ("waits for its category",)
    ]
    empty = strangler("sync", "dlq", "list", "catalog", "-f", str(sync.routing), "--json")
    assert json.loads(empty.stdout) == {"dead_letters": [], "set_aside": []}


def test_orders_on_the_monolith_reach_the_catalog_service(
    sync: Sync, pg_monolith: MonolithServer
) -> None:
    catalog = {"CATALOG_DATABASE_URL": sync.database}
    source = pg_monolith.database_url
    manage("import_catalog", "--source", source, "--replace", env=catalog, module=CATALOG)
    with httpx.Client(base_url=pg_monolith.base_url, timeout=30) as shop:
        email = f"sync-{uuid.uuid4().hex[:8]}@example.com"
        token = shop.post(
            "/api/customers/",
            json={"email": email, "password": "Sync-pass-1234", "full_name": "S"},
        ).json()["token"]
        products = shop.get("/api/catalog/products/", params={"in_stock": "true"}).json()
        placed = []
        for product in products["results"][:5]:
            response = shop.post(
                "/api/orders/",
                json={"lines": [{"product": product["id"], "quantity": 1}]},
                headers={"Authorization": f"Token {token}"},
            )
            assert response.status_code == 201, response.text
            placed.append(response.json()["id"])
        shop.post(f"/api/orders/{placed[0]}/cancel/", headers={"Authorization": f"Token {token}"})
    # the monolith's two-way pair comes from the sample's routing (this file has none)
    relay_env = {
        **sync.env,
        **SAMPLE_ROUTING.sync_environment("monolith"),
        "DATABASE_URL": pg_monolith.database_url,
    }
    published = manage("outbox_relay", "--once", "--routing", str(sync.routing), env=relay_env)
    assert int(published.split()[1]) >= 6
    sync.consume()
    with psycopg.connect(psql_url(pg_monolith.database_url)) as conn:
        monolith = conn.execute("SELECT product_id, on_hand FROM catalog_stocklevel").fetchall()
    assert sorted(sync.rows("SELECT product_id, on_hand FROM catalog_stocklevel")) == sorted(
        monolith
    )
