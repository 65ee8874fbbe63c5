"""Publishing the orders function's changes to the sync: ``python -m extracted.orders.relay``.

Orders placed or changed on the Lambda side flow back to the monolith (the
``orders-to-monolith`` stream of routing.yaml), so its pages, admin and reports stay
whole during the canary. Each flagged order (the store's sparse GSI3) is sent with its
full current state and its version stamp — rank, version, origin, and as base the state
the monolith last had (``facade.sync.versions``) — MessageGroupId = the order,
MessageDeduplicationId = order and version; it is unflagged only if no newer change came
in meanwhile. A relay that dies between the two sends it again, and the monolith's inbox
applies a version at most once.

Locally a worker of ``strangler up`` polls the index; on AWS the same ``publish_pending``
runs from a scheduled invocation (or a DynamoDB Streams trigger).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

from extracted.orders.store import OrderStore
from facade.sync.consumer import stop_on_signals

log = logging.getLogger(__name__)
AGGREGATE = "orders.Order"
STREAM = "orders-to-monolith"


def message(store: OrderStore, order: dict[str, Any], stream: str = STREAM) -> dict[str, Any]:
    from extracted.orders.api import render

    sent = store.stamp(order)
    base = store.synced(order)
    return {
        "event": f"{AGGREGATE}:{int(order['id'])}:{sent.version}",
        "stream": stream,
        "aggregate": AGGREGATE,
        "id": str(int(order["id"])),
        "version": sent.version,
        "rank": sent.rank,
        "base": base.as_dict() if base else None,
        "kind": "upsert",
        "data": {**render(order), "reservation": order.get("reservation")},
        "origin": sent.origin,
        "at": order.get("updated_at"),
    }


def publish_pending(
    store: OrderStore, sqs: Any, queue_url: str, limit: int = 100, stream: str = STREAM
) -> int:
    """Send every flagged order once; return how many were published."""
    orders = store.pending(limit)
    published = 0
    for start in range(0, len(orders), 10):
        chunk = orders[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(message(store, o, stream), separators=(",", ":")),
                    "MessageGroupId": f"{AGGREGATE}:{int(o['id'])}",
                    "MessageDeduplicationId": f"order-{int(o['id'])}-v{int(o['version'])}",
                }
                for i, o in enumerate(chunk)
            ],
        )
        for entry in answer.get("Successful", []):
            order = chunk[int(entry["Id"])]
            store.mark_published(order)
            published += 1
        for failure in answer.get("Failed", []):
            log.warning("order %s refused by SQS: %s", chunk[int(failure["Id"])]["id"], failure)
    return published


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
    sqs = boto3.client("sqs")
    url = wait_for_queue(sqs, stream.queue)
    store = store_from_environment()
    if args.once:
        total = 0
        while published := publish_pending(store, sqs, url, stream=stream.name):
            total += published
        print(f"published {total} orders")
        return 0
    stop = stop_on_signals()
    print(f"orders relay: {store.table} → {stream.queue}", flush=True)
    sent = 0
    while not stop.is_set():
        try:
            published = publish_pending(store, sqs, url, stream=stream.name)
        except EndpointConnectionError as exc:
            log.warning("orders relay: unreachable (%s); retrying", exc)
            published = 0
        sent += published
        if not published:
            stop.wait(args.idle)
    print(f"orders relay stopped after publishing {sent} changes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
