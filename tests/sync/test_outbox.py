"""The monolith's transactional outbox and its relay, on PostgreSQL and the SQS stand-in."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from typing import Any

import boto3
import pytest
from django.db import transaction

from facade import aws_local
from facade.routing.model import SyncStream
from facade.sync.django.models import OutboxEvent
from facade.sync.django.recording import record_ids, suppressed
from facade.sync.django.relay import Relay
from facade.sync.queues import create_queues
from monolith.catalog import stock
from monolith.catalog.models import Category, Product, StockLevel
from tests.monolith.conftest import make_product

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


class Queue:
    def __init__(self, endpoints: aws_local.Endpoints, max_receives: int = 5) -> None:
        self.stream = SyncStream(
            name="catalog",
            queue=f"t-{uuid.uuid4().hex[:10]}.fifo",
            source="monolith",
            target="catalog",
            max_receives=max_receives,
        )
        self.client = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        self.url, self.dlq = create_queues(self.client, self.stream)

    def receive_all(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every message now in the queue (deleted as read), in receive order."""
        received: list[dict[str, Any]] = []
        while True:
            answer = self.client.receive_message(
                QueueUrl=url or self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                AttributeNames=["All"], MessageSystemAttributeNames=["All"],
            )  # fmt: skip
            messages = answer.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(
                    {
                        **json.loads(message["Body"]),
                        "_attrs": message["Attributes"],
                        "_body": message["Body"],
                    }
                )
            self.client.delete_message_batch(
                QueueUrl=url or self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


@pytest.fixture
def queue(aws_endpoints: aws_local.Endpoints) -> Queue:
    return Queue(aws_endpoints)


def test_a_rolled_back_transaction_publishes_nothing() -> None:
    product = make_product("ROLLBACK", 5)
    before = OutboxEvent.objects.count()

    def failing_order() -> None:
        with transaction.atomic():
            product.name = "never"
            product.save()
            stock.take({product.pk: 2})
            raise RuntimeError("the order failed")

    with pytest.raises(RuntimeError):
        failing_order()
    assert OutboxEvent.objects.count() == before
    with transaction.atomic():
        product.name = "renamed"
        product.save()
    event = OutboxEvent.objects.filter(aggregate="catalog.Product").latest("id")
    assert event.payload is not None
    assert event.payload["name"] == "renamed"
    assert event.aggregate_id == str(product.pk)


def test_stock_taken_by_a_queryset_update_is_recorded_with_its_new_level() -> None:
    product = make_product("TAKEN", 9)
    level = StockLevel.objects.get(product=product)
    with transaction.atomic():
        stock.take({product.pk: 4})
    event = OutboxEvent.objects.filter(aggregate="catalog.StockLevel").latest("id")
    assert event.aggregate_id == str(level.pk)
    assert isinstance(event.payload, dict)
    assert (event.payload["product_id"], event.payload["on_hand"]) == (product.pk, 5)
    with transaction.atomic():
        stock.give_back([(product.pk, 4)])
    returned = OutboxEvent.objects.filter(aggregate="catalog.StockLevel").latest("id").payload
    assert isinstance(returned, dict)
    assert returned["on_hand"] == 9


def test_the_relay_publishes_ten_thousand_changes_once_in_per_entity_order(queue: Queue) -> None:
    products = [make_product(f"ORDERED-{i}", 100) for i in range(100)]
    OutboxEvent.objects.all().delete()
    for round_ in range(100):
        with transaction.atomic():
            Product.objects.filter(pk__in=[p.pk for p in products]).update(name=f"round {round_}")
            record_ids(Product, [p.pk for p in products])
    events = list(OutboxEvent.objects.order_by("id"))
    assert len(events) == 10_000
    relay = Relay(queue.client, {"catalog": queue.url})
    assert relay.drain("catalog") == 10_000
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()

    received = queue.receive_all()
    assert sorted(m["event"] for m in received) == sorted(str(e.event_id) for e in events)
    by_entity: dict[str, list[int]] = {}
    for message in received:
        assert message["_attrs"]["MessageGroupId"] == f"catalog.Product:{message['id']}"
        # the deduplication id is the body's hash: unique per change, the same on a resend
        dedup = hashlib.sha256(message["_body"].encode()).hexdigest()
        assert message["_attrs"]["MessageDeduplicationId"] == dedup
        by_entity.setdefault(message["id"], []).append(message["version"])
    assert all(versions == sorted(versions) for versions in by_entity.values())
    assert {m["data"]["name"] for m in received if m["version"] == events[-1].pk} == {"round 99"}


def test_a_relay_that_dies_after_sending_loses_nothing(queue: Queue) -> None:
    product = make_product("CRASH", 1)
    OutboxEvent.objects.all().delete()
    for n in range(25):
        with transaction.atomic():
            product.name = f"v{n}"
            product.save()

    def crash(_: list[OutboxEvent]) -> None:
        raise KeyboardInterrupt("killed between send and mark")

    with pytest.raises(KeyboardInterrupt):
        Relay(queue.client, {"catalog": queue.url}, after_send=crash).pass_once("catalog")
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 25
    assert Relay(queue.client, {"catalog": queue.url}).drain("catalog") == 25
    received = queue.receive_all()
    assert {m["event"] for m in received} == {str(e.event_id) for e in OutboxEvent.objects.all()}


class _Recording:
    """An SQS client that records every entry the relays send."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def send_message_batch(self, **kw: Any) -> Any:
        with self.lock:
            self.sent += [e["MessageDeduplicationId"] for e in kw["Entries"]]
        return self.client.send_message_batch(**kw)


def test_concurrent_relays_never_send_an_event_twice(queue: Queue) -> None:
    products = [make_product(f"SHARED-{i}", 1) for i in range(100)]
    OutboxEvent.objects.all().delete()
    for round_ in range(3):
        with transaction.atomic():
            for product in products:
                product.name = f"r{round_}"
                product.save()
    recording = _Recording(queue.client)
    relays = [Relay(recording, {"catalog": queue.url}, rows_per_pass=50) for _ in range(4)]
    barrier = threading.Barrier(len(relays))

    def work(relay: Relay) -> None:
        from django.db import connection

        barrier.wait()
        try:
            relay.drain("catalog")
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recording.sent) == 300
    assert len(set(recording.sent)) == 300
    assert sum(r.sent for r in relays) == 300
    assert sum(1 for r in relays if r.sent) > 1  # the work was shared
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    # and each product's changes are in the queue in the order they were made
    names: dict[str, list[str]] = {}
    for message in queue.receive_all():
        names.setdefault(message["id"], []).append(message["data"]["name"])
    assert len(names) == 100
    assert all(seen == ["r0", "r1", "r2"] for seen in names.values()), names


def test_categories_and_products_are_registered_but_orders_are_not() -> None:
    category = Category.objects.create(name="Sync", slug=f"sync-{uuid.uuid4().hex[:6]}")
    product = Product.objects.create(
        sku=f"S-{uuid.uuid4().hex[:6]}", name="p", slug=f"p-{uuid.uuid4().hex[:6]}",
        category=category, price="1.00",
    )  # fmt: skip
    aggregates = set(OutboxEvent.objects.values_list("aggregate", flat=True))
    assert {"catalog.Category", "catalog.Product"} <= aggregates
    product.delete()
    deleted = OutboxEvent.objects.filter(aggregate="catalog.Product").latest("id")
    assert (deleted.kind, deleted.payload) == ("delete", None)


def test_changes_applied_from_another_service_are_not_published_back() -> None:
    product = make_product("ECHO", 3)
    before = OutboxEvent.objects.count()
    with transaction.atomic(), suppressed():
        product.name = "from the catalog service"
        product.save()
        stock.take({product.pk: 1})
    assert OutboxEvent.objects.count() == before
    with transaction.atomic():
        product.save()
    assert OutboxEvent.objects.count() == before + 1
