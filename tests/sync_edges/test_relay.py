"""Edge cases of the monolith's relay (facade/sync/django/relay.py) against SQS's answers.

Each test drives the real relay over the real outbox (SQLite or PostgreSQL) with an
in-memory SQS (tests/sync_edges/fakes.py) that answers as AWS documents."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from django.core.management import call_command

from facade.sync import sqs
from facade.sync.django.models import OutboxEvent
from facade.sync.django.relay import Relay
from monolith.catalog.models import Product
from tests.monolith.conftest import make_product
from tests.sync_edges.fakes import Refusing, Sender, client_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "code", ["KmsDisabled", "KmsNotFound", "KmsInvalidState", "KmsOptInRequired"]
)
def test_a_queue_whose_kms_key_cannot_be_used_stops_the_relay_instead_of_parking_every_change(
    code: str,
) -> None:
    """SQS answers SendMessageBatch and SendMessage with 400 Kms* when the queue's KMS key
    is disabled, missing or not usable: a configuration error of the queue, which no
    change can cause and waiting cannot fix. The relay must stop with a message that says
    what to fix (exit 2), and leave the changes in the outbox."""
    make_product("KMS-1", 5)
    make_product("KMS-2", 5)
    pending = OutboxEvent.objects.filter(published_at__isnull=True).count()
    assert pending > 0
    relay = Relay(Refusing(code), {"catalog": "https://sqs.example/q.fifo"})
    stop = threading.Event()
    passes = []

    def step() -> bool:
        passes.append(1)
        if len(passes) > 3:
            stop.set()
        return relay.step(["catalog"])

    with pytest.raises(sqs.ConfigurationProblem):
        sqs.run_worker("outbox relay", step, stop, wait=lambda _: None)
    assert OutboxEvent.objects.filter(parked_at__isnull=False).count() == 0, (
        "every change was set aside as if SQS had refused it for good: "
        + "; ".join(OutboxEvent.objects.values_list("last_error", flat=True)[:2])
    )


@pytest.mark.parametrize("character", ["\ufffe", "\uffff"])
def test_a_product_whose_name_holds_a_character_sqs_does_not_allow_still_reaches_the_queue(
    character: str,
) -> None:
    """U+FFFE / U+FFFF are valid text in both databases (a pasted description), but SQS
    refuses message bodies holding them. The relay writes the body with
    ensure_ascii=False, so such a product is set aside — and so is every later change
    of it: the catalog service never gets it. JSON can carry any character escaped
    (\\uffff), so nothing forces that refusal."""
    product = make_product("ODD", 5)
    Product.objects.filter(pk=product.pk).update(name=f"Lamp {character} deluxe")
    product.refresh_from_db()
    product.save()  # the change the relay must publish
    sender = Sender()
    relay = Relay(sender, {"catalog": "https://sqs.example/q.fifo"})
    relay.drain("catalog")
    parked = list(
        OutboxEvent.objects.filter(parked_at__isnull=False).values_list("aggregate", "last_error")
    )
    assert parked == [], f"set aside: {parked}"
    names = [
        json.loads(m.body)["data"]["name"]
        for m in sender.queue.messages
        if json.loads(m.body)["aggregate"] == "catalog.Product"
    ]
    assert names[-1] == f"Lamp {character} deluxe"


class RefusesFirstTry(Sender):
    """Refuses (for now: SenderFault false) the first entry of one message group."""

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group
        self.refused = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        kept = [e for e in Entries if e["MessageGroupId"] != self.group or self.refused]
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "retry"}
            for e in Entries
            if e not in kept
        ]
        self.refused += len(failed)
        answer = super().send_message_batch(QueueUrl, kept) if kept else {"Successful": []}
        return {"Successful": answer["Successful"], "Failed": failed}


def test_held_an_entitys_later_change_waits_behind_its_earlier_one_refused_for_now() -> None:
    """A product's first change is refused for now; its later change, and a
    second pass before the retry is due, must not overtake it; other entities flow."""
    product = make_product("WAIT", 5)
    group = f"catalog.Product:{product.pk}"
    sender = RefusesFirstTry(group)
    relay = Relay(sender, {"catalog": "https://sqs.example/q.fifo"})
    relay.pass_once("catalog")
    product.name = "later"
    product.save()
    make_product("OTHER", 5)
    relay.pass_once("catalog")
    groups = [m.group for m in sender.queue.messages]
    assert group not in groups
    assert "catalog.Product:" + str(product.pk + 1) in groups
    waiting = OutboxEvent.objects.filter(aggregate_id=str(product.pk), aggregate="catalog.Product")
    assert [e.attempts for e in waiting.order_by("id")] == [1, 0]


def test_held_a_message_over_the_limit_in_bytes_but_not_in_characters_is_set_aside() -> None:
    """100,000 times 'é' is 100,000 characters but 200,000 bytes: over a 150,000
    byte limit it is set aside, named with its size, and the stream flows on."""
    product = make_product("BIG", 5)
    product.description = "é" * 100_000
    product.save()
    make_product("SMALL", 5)
    sender = Sender()
    relay = Relay(sender, {"catalog": "q"}, limits={"catalog": 150_000})
    relay.drain("catalog")
    parked = OutboxEvent.objects.filter(parked_at__isnull=False)
    assert parked.count() == 1
    assert "200," in parked.get().last_error
    assert "150,000" in parked.get().last_error
    out = io.StringIO()
    call_command("sync_status", "--parked", "--stream", "catalog", "--json", stdout=out)
    listed = json.loads(out.getvalue())["parked"]
    assert [p["entity"] for p in listed] == [f"catalog.Product:{product.pk}"]
    assert (
        OutboxEvent.objects.filter(published_at__isnull=True, parked_at__isnull=True).count() == 0
    )


def test_held_a_failed_pass_records_its_attempt_and_the_worker_carries_on() -> None:
    """SQS throttles the whole call: the pass rolls back, the attempt and the
    error are recorded on its rows anyway, the worker backs off and the next pass sends."""
    make_product("THROTTLE", 5)
    calls = {"n": 0}
    sender = Sender()

    class Throttled:
        def send_message_batch(
            self, QueueUrl: str, Entries: list[dict[str, str]]
        ) -> dict[str, Any]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise client_error("RequestThrottled", 400, "SendMessageBatch")
            return sender.send_message_batch(QueueUrl, Entries)

    relay = Relay(Throttled(), {"catalog": "q"})
    stop = threading.Event()

    def step() -> bool:
        if calls["n"] >= 2:
            stop.set()
        return relay.step(["catalog"])

    sqs.run_worker("outbox relay", step, stop, wait=lambda _: None)
    rows = OutboxEvent.objects.order_by("id")
    assert all(r.published_at is not None for r in rows)
    assert all(r.attempts == 1 and "RequestThrottled" in r.last_error for r in rows)
    out = io.StringIO()
    call_command("sync_status", "--parked", "--stream", "catalog", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"parked": []}
