"""Edge cases: several relays on PostgreSQL ("several relays share the work") and the
per-entity order the FIFO queue is meant to keep."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from facade.sync.django.relay import Relay
from tests.monolith.conftest import make_product
from tests.sync_edges.fakes import Sender

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


class Blocking(Sender):
    """SQS that takes its time answering the first call (a slow network, retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_send = threading.Event()
        self.release = threading.Event()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.in_send.set()
        self.release.wait(20)
        return super().send_message_batch(QueueUrl, Entries)


def test_a_second_relay_never_sends_an_entitys_later_change_ahead_of_the_first() -> None:
    """Relay A has taken a product's first change (FOR UPDATE) and is sending it; relay B
    skips the locked rows and takes the next ones — including the same product's later
    change — and sends it first. The queue then holds the product's changes out of
    order: consumers drop the earlier one as overtaken, and for a two-way order the
    later one arrives with a base the receiver never held, which the conflict rule
    records as a conflict that did not happen (tests/sync_edges/test_inbox_consumer.py).
    `pending()` only keeps back rows behind an earlier row *waiting for a retry*, not
    behind one locked by another relay."""
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED: PostgreSQL")
    product = make_product("TWO-RELAYS", 5)  # Category, Product v1, StockLevel
    product.name = "renamed"
    product.save()  # Product v2
    group = f"catalog.Product:{product.pk}"
    first = Blocking()
    a = Relay(first, {"catalog": "q"}, rows_per_pass=2)  # Category, Product v1

    def run_a() -> None:
        a.pass_once("catalog")
        connection.close()

    worker = threading.Thread(target=run_a)
    worker.start()
    try:
        assert first.in_send.wait(10)
        second = Sender()
        b = Relay(second, {"catalog": "q"}, rows_per_pass=10)
        b.pass_once("catalog")
        sent_by_b = [m.group for m in second.queue.messages]
    finally:
        first.release.set()
        worker.join()
    assert group not in sent_by_b, (
        f"relay B sent {group}'s later change while relay A was still sending its earlier "
        f"one: {sent_by_b}"
    )
