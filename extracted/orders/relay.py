"""Publishing the orders function's changes to the sync: ``python -m extracted.orders.relay``.

Orders placed or changed on the Lambda side flow back to the monolith (the
``orders-to-monolith`` stream of routing.yaml), so its pages, admin and reports stay
whole during the canary. Each flagged order that is due (the store's sparse GSI3) is
sent with its full current state and its version stamp — rank, version, origin, and as
base the state the monolith last had (``facade.sync.conflict``) — as the toolkit's
message (``facade.sync.messages``: group = the order, deduplication id = the body's
hash); it is unflagged only if no newer change came in meanwhile. A relay that dies
between the two sends it again, and the monolith's inbox applies a version at most once.

A change SQS refuses for now is due again after a backoff while other orders go on; one
it refuses for good (or too large for the queue) is set aside (``OrderStore.park``) and
``strangler sync dlq`` lists it.

Locally a worker of ``strangler up`` polls the index; on AWS the same ``publish_pending``
runs from a scheduled invocation (or a DynamoDB Streams trigger).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import sys
from typing import Any

from botocore.exceptions import ClientError

from extracted.orders.store import OrderStore
from facade.sync import sqs
from facade.sync.consumer import stop_on_signals
from facade.sync.messages import BATCH, MAX_MESSAGE_BYTES, Change, batches

log = logging.getLogger(__name__)
AGGREGATE = "orders.Order"
STREAM = "orders-to-monolith"
RETRY_CAP = 300.0


def change(store: OrderStore, order: dict[str, Any], stream: str = STREAM) -> Change:
    from extracted.orders.api import render

    sent = store.stamp(order)
    return Change(
        stream=stream,
        aggregate=AGGREGATE,
        id=str(int(order["id"])),
        kind="upsert",
        data={**render(order), "reservation": order.get("reservation")},
        version=sent.version,
        origin=sent.origin,
        event=f"{AGGREGATE}:{int(order['id'])}:{sent.version}",
        at=order.get("updated_at"),
        rank=sent.rank,
        base=store.synced(order),
    )


def publish_pending(
    store: OrderStore,
    client: Any,
    queue_url: str,
    limit: int = 100,
    stream: str = STREAM,
    max_bytes: int = MAX_MESSAGE_BYTES,
    rng: random.Random | None = None,
) -> int:
    """Send every due flagged order once; return how many were published or set aside."""
    orders = store.pending(limit)
    changes = [change(store, order, stream) for order in orders]
    bodies = [item.encode() for item in changes]
    groups, oversize = batches(bodies, max_bytes)
    handled = 0
    for index in oversize:
        store.park(
            orders[index],
            f"message of {len(bodies[index].encode()):,} bytes is larger than the stream "
            f"allows ({max_bytes:,} bytes, sync.{stream}.max_message_bytes)",
        )
        handled += 1
    for group in groups:
        assert len(group) <= BATCH
        entries = [changes[i].entry(str(n), bodies[i]) for n, i in enumerate(group)]
        try:
            answer = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as exc:
            if sqs.classify(exc) is not None:
                raise
            answer = _one_by_one(client, queue_url, entries)
        for entry in answer.get("Successful", []):
            store.mark_published(orders[group[int(entry["Id"])]])
            handled += 1
        for failure in answer.get("Failed", []):
            order = orders[group[int(failure["Id"])]]
            error = f"{failure.get('Code')}: {failure.get('Message', '')}"
            if sqs.refused_for_good(failure):
                store.park(order, f"refused by SQS: {error}")
                handled += 1
                continue
            attempt = int(order.get("attempts", 0)) + 1
            delay = (rng or random).uniform(0.5, 1.0) * min(RETRY_CAP, 2.0**attempt)
            store.retry_later(order, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay))
            log.warning("order %s refused by SQS for now (%s); retried in %.0fs",
                        order["id"], error, delay)  # fmt: skip
    return handled


def _one_by_one(client: Any, queue_url: str, entries: list[dict[str, str]]) -> dict[str, Any]:
    answer: dict[str, list[dict[str, Any]]] = {"Successful": [], "Failed": []}
    for entry in entries:
        try:
            client.send_message(QueueUrl=queue_url, **{k: v for k, v in entry.items() if k != "Id"})
        except ClientError as exc:
            if sqs.classify(exc) is not None:
                raise
            error = exc.response.get("Error", {})
            answer["Failed"].append({"Id": entry["Id"], "SenderFault": True,
                                     "Code": error.get("Code"), "Message": str(exc)})  # fmt: skip
        else:
            answer["Successful"].append({"Id": entry["Id"]})
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extracted.orders.relay", description=__doc__)
    parser.add_argument("--routing", default=os.environ.get("STRANGLER_ROUTING", "routing.yaml"))
    parser.add_argument("--stream", default=STREAM)
    parser.add_argument("--idle", type=float, default=0.2)
    parser.add_argument("--once", action="store_true", help="publish what is pending, exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    from extracted.orders.handler import store_from_environment
    from facade.routing.loader import load_table
    from facade.sync.queues import wait_for_queue

    stream = load_table(args.routing).stream(args.stream)
    try:
        client = sqs.client()
        url = wait_for_queue(client, stream.queue)
        store = store_from_environment()
    except (sqs.ConfigurationProblem, RuntimeError) as exc:
        print(f"orders relay: {exc}", file=sys.stderr)
        return 2

    def step() -> bool:
        return (
            publish_pending(
                store, client, url, stream=stream.name, max_bytes=stream.max_message_bytes
            )
            > 0
        )

    if args.once:
        total = 0
        while published := publish_pending(
            store, client, url, stream=stream.name, max_bytes=stream.max_message_bytes
        ):
            total += published
        print(f"published {total} orders")
        return 0
    stop = stop_on_signals()
    print(f"orders relay: {store.table} → {stream.queue}", flush=True)
    try:
        sqs.run_worker("orders relay", step, stop, idle=args.idle)
    except sqs.ConfigurationProblem as exc:
        print(f"orders relay: {exc}", file=sys.stderr)
        return 2
    print("orders relay stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
