"""Nothing stalls a stream: what SQS refuses is set aside or retried per entity while the
rest flows, attempts survive a failed pass, and workers retry what heals by waiting and
stop with what to fix on what does not (the monolith's relay, on PostgreSQL and the SQS
stand-in)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from django.utils import timezone

from facade import aws_local
from facade.sync import sqs
from facade.sync.django.models import OutboxEvent
from facade.sync.django.relay import Relay
from facade.sync.messages import Change
from monolith.catalog.models import Product
from tests.monolith.conftest import make_product
from tests.sync.test_outbox import Queue

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(aws_endpoints: aws_local.Endpoints) -> Queue:
    return Queue(aws_endpoints)


def _entities(received: list[dict[str, Any]]) -> list[str]:
    return [f"{m['aggregate']}:{m['id']}" for m in received]


def _fresh(*products: Product) -> None:
    """Only these products' current state is pending in the outbox."""
    OutboxEvent.objects.all().delete()
    for product in products:
        product.save()


def _refusal(code: str, message: str) -> ClientError:
    """SQS's answer 400 with ``code``."""
    answer: Any = {"Error": {"Code": code, "Message": message},
                   "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
    return ClientError(answer, "SendMessageBatch")


class Refusing:
    """An SQS client that refuses what ``judge`` says, as SQS would, and passes the rest
    on to the stand-in."""

    def __init__(self, client: Any, judge: Any) -> None:
        self.client, self.judge = client, judge
        self.calls = 0

    def send_message_batch(self, **kw: Any) -> Any:
        self.calls += 1
        verdicts = {e["Id"]: self.judge(e) for e in kw["Entries"]}
        if "whole" in verdicts.values():
            raise _refusal(
                "AWS.SimpleQueueService.BatchRequestTooLong",
                "Batch requests cannot be longer than 262144 bytes",
            )
        passed = [e for e in kw["Entries"] if verdicts[e["Id"]] is None]
        answer: dict[str, Any] = {"Successful": [], "Failed": []}
        if passed:
            answer = self.client.send_message_batch(QueueUrl=kw["QueueUrl"], Entries=passed)
        for entry in kw["Entries"]:
            verdict = verdicts[entry["Id"]]
            if verdict in ("for good", "whole"):
                answer.setdefault("Failed", []).append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue",
                     "Message": "Message contains invalid characters"}
                )  # fmt: skip
            elif verdict == "for now":
                answer.setdefault("Failed", []).append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError",
                     "Message": "try again"}
                )  # fmt: skip
        return answer

    def send_message(self, **kw: Any) -> Any:
        if self.judge({**kw, "Id": "0"}) is not None:
            raise _refusal("InvalidParameterValue", "invalid characters")
        return self.client.send_message(**kw)


def test_a_change_too_large_for_the_stream_is_set_aside_naming_it_and_the_rest_flows(
    queue: Queue,
) -> None:
    small = [make_product(f"SMALL-{i}", 1) for i in range(12)]
    large = make_product("LARGE", 1)
    large.description = "é" * 1500  # 1,500 characters, 3,000 bytes in UTF-8
    _fresh(*small[:6], large, *small[6:])
    relay = Relay(queue.client, {"catalog": queue.url}, limits={"catalog": 2048})
    assert relay.drain("catalog") == 13
    received = _entities(queue.receive_all())
    assert f"catalog.Product:{large.pk}" not in received
    assert {f"catalog.Product:{p.pk}" for p in small} <= set(received)
    parked = OutboxEvent.objects.get(parked_at__isnull=False)
    assert (parked.aggregate, parked.aggregate_id) == ("catalog.Product", str(large.pk))
    assert "bytes is larger than the stream allows (2,048 bytes" in parked.last_error
    assert parked.published_at is None
    # a later, smaller state of the same product flows again
    large.description = "short"
    large.save()
    assert relay.drain("catalog") == 1
    assert _entities(queue.receive_all()) == [f"catalog.Product:{large.pk}"]


def test_a_batch_refused_whole_is_sent_entry_by_entry_and_only_the_guilty_one_is_set_aside(
    queue: Queue,
) -> None:
    products = [make_product(f"WHOLE-{i}", 1) for i in range(8)]
    guilty = products[3]
    _fresh(*products)
    refusing = Refusing(
        queue.client, lambda e: "whole" if f'"id":"{guilty.pk}"' in e["MessageBody"] else None
    )
    relay = Relay(refusing, {"catalog": queue.url})
    relay.drain("catalog")
    received = _entities(queue.receive_all())
    assert sorted(received) == sorted(f"catalog.Product:{p.pk}" for p in products if p != guilty)
    parked = OutboxEvent.objects.get(parked_at__isnull=False)
    assert parked.aggregate_id == str(guilty.pk)
    assert "InvalidParameterValue" in parked.last_error


def test_entries_refused_for_now_hold_back_only_their_own_entity_in_order(queue: Queue) -> None:
    stuck, other = make_product("STUCK", 1), make_product("FLOWS", 1)
    OutboxEvent.objects.all().delete()
    for round_ in range(3):  # three changes of each, in order
        for product in (stuck, other):
            product.name = f"round {round_}"
            product.save()
    refusing = Refusing(
        queue.client, lambda e: "for now" if f'"id":"{stuck.pk}"' in e["MessageBody"] else None
    )
    now = timezone.now()
    relay = Relay(refusing, {"catalog": queue.url}, clock=lambda: now)
    relay.drain("catalog")
    first = queue.receive_all()
    assert [m["data"]["name"] for m in first] == ["round 0", "round 1", "round 2"]
    assert {m["id"] for m in first} == {str(other.pk)}
    waiting = OutboxEvent.objects.filter(aggregate_id=str(stuck.pk), published_at__isnull=True)
    assert waiting.count() == 3
    head = waiting.order_by("id").first()
    assert head is not None
    assert head.attempts == 1
    assert head.retry_at is not None
    assert head.retry_at > now
    assert "InternalError" in head.last_error
    # once SQS takes it again, the entity's changes go out in their order
    later = now + dt.timedelta(hours=1)
    healed = Relay(queue.client, {"catalog": queue.url}, clock=lambda: later)
    healed.drain("catalog")
    assert [m["data"]["name"] for m in queue.receive_all()] == ["round 0", "round 1", "round 2"]


def test_a_failed_pass_records_its_attempt_although_its_transaction_rolled_back(
    queue: Queue,
) -> None:
    product = make_product("OUTAGE", 1)
    _fresh(product)

    class Unreachable:
        def send_message_batch(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(EndpointConnectionError):
        Relay(Unreachable(), {"catalog": queue.url}).pass_once("catalog")
    row = OutboxEvent.objects.get(aggregate_id=str(product.pk))
    assert row.published_at is None
    assert row.attempts == 1
    assert "Could not connect" in row.last_error


def test_the_worker_retries_throttling_with_backoff_and_stops_on_a_configuration_problem() -> None:
    import threading

    stop = threading.Event()
    calls: list[str] = []
    waits: list[float] = []

    def throttled_then_fine() -> bool:
        calls.append("step")
        if len(calls) <= 3:
            raise _refusal("ThrottlingException", "slow down")
        stop.set()
        return True

    sqs.run_worker("relay", throttled_then_fine, stop, wait=waits.append)
    assert len(calls) == 4
    assert len(waits) == 3  # backed off after each refusal, then went on

    def no_credentials() -> bool:
        raise NoCredentialsError()

    with pytest.raises(sqs.ConfigurationProblem, match="no AWS credentials"):
        sqs.run_worker("relay", no_credentials, threading.Event(), wait=waits.append)


def test_the_relay_command_exits_2_saying_what_to_fix_without_a_region(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, "-m", "monolith.manage", "outbox_relay", "--once"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no AWS region" in result.stderr


def test_two_states_of_one_version_have_two_deduplication_ids() -> None:
    """SQS drops a message whose deduplication id it saw in the last five minutes: the id
    is the body's digest, so a different change never shares one."""

    def state(status: str) -> Change:
        return Change(
            stream="orders-to-lambda", aggregate="orders.Order", id="7", kind="upsert",
            data={"id": 7, "status": status}, version=3, origin="monolith", event="e",
            rank=1, base=None,
        )  # fmt: skip

    paid, cancelled = state("paid").entry("0"), state("cancelled").entry("0")
    assert paid["MessageDeduplicationId"] != cancelled["MessageDeduplicationId"]
    assert (
        paid["MessageDeduplicationId"] == hashlib.sha256(paid["MessageBody"].encode()).hexdigest()
    )
    assert state("paid").entry("1")["MessageDeduplicationId"] == paid["MessageDeduplicationId"]
