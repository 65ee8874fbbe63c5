"""The orders function's side of the sync: the monolith's order changes, applied here.

``lambda_handler`` is the function's SQS entry point for the ``orders-to-lambda`` stream
(a FIFO queue; on AWS an event source mapping with ``ReportBatchItemFailures``, locally
``python -m facade.sync.event_source`` plays that part). Powertools'
``SqsFifoPartialProcessor`` applies the records in order; when one fails it reports it
and every later record **of the same message group** (the same order) as
``batchItemFailures`` (``skip_group_on_error``): SQS gives them back in order, and after
the queue's ``max_receives`` moves a poison message to the DLQ — while the other orders
of the batch apply and are done with.

Each record is judged by ``OrderStore.apply_remote`` (``facade.sync.conflict``): a
duplicate or overtaken change does nothing, the greater stamp wins, and a change made
concurrently with one made here is recorded as a conflict.

``python -m extracted.orders.sync status --json`` prints this side's figures for
``strangler sync status`` (``--parked``: the changes set aside); ``emit orders.Order
--ids 1,2`` (or ``emit --parked``) sends orders again as new changes (the repair of
``strangler sync verify --repair``); ``digest`` is this side's half of ``strangler sync
verify`` (``facade.sync.digest``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from extracted.orders.relay import AGGREGATE, STREAM
from extracted.orders.store import STAMP_FORMAT, OrderStore
from facade.sync import digest as digests
from facade.sync.conflict import Decision
from facade.sync.messages import Change, Malformed, decode

logger = Logger(service="orders-sync")
INBOUND = "orders-to-lambda"
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
_store: OrderStore | None = None


class Unusable(ValueError):
    """A record that can never apply: it fails every time and ends in the DLQ."""


def store() -> OrderStore:
    global _store
    if _store is None:
        from extracted.orders.handler import store_from_environment

        _store = store_from_environment()
    return _store


def use_store(given: OrderStore | None) -> None:
    """Apply into this store (tests, the local event source); None: from the environment."""
    global _store
    _store = given


def apply(body: str | Mapping[str, Any] | Change, into: OrderStore) -> Decision:
    """Apply one change of the monolith's; raises ``Unusable`` for a malformed one."""
    try:
        change = body if isinstance(body, Change) else decode(body)
    except Malformed as exc:
        raise Unusable(str(exc)) from exc
    if change.aggregate != AGGREGATE:
        raise Unusable(f"not an order: {change.aggregate!r}")
    if change.kind != "upsert" or change.data is None:
        raise Unusable(f"{change.kind!r} event: orders are cancelled, not deleted, across the cut")
    if not change.two_way:
        raise Unusable(f"{change.entity}: an order's change without a version stamp")
    if str(change.data.get("id")) != change.id:
        raise Unusable(f"event for order {change.id} carries order {change.data.get('id')}")
    try:
        return into.apply_remote(
            change.data, change.stamp, change.base, stream=change.stream or INBOUND
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Unusable(f"{change.entity}: malformed order: {exc!r}") from exc


def record_handler(record: SQSRecord) -> None:
    decision = apply(record.body, store())
    logger.debug("applied" if decision.apply else "kept", extra={"id": record.message_id})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


# -- comparing both sides ----------------------------------------------------------------


def states(into: OrderStore) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every order as the sync carries it (the monolith's ``order_state`` shape)."""
    from extracted.orders.api import render

    for order in into.every_order():
        yield int(order["id"]), {**render(order), "reservation": order.get("reservation")}


def status(into: OrderStore) -> dict[str, Any]:
    pending = into.waiting(limit=1000)
    oldest = min((str(o.get("updated_at") or o["placed_at"]) for o in pending), default=None)
    age = 0.0
    if oldest:
        moment = dt.datetime.strptime(oldest, STAMP_FORMAT).replace(tzinfo=dt.UTC)
        age = max(0.0, (dt.datetime.now(dt.UTC) - moment).total_seconds())
    return {
        "streams": {
            STREAM: {
                "pending": len(pending),
                "oldest_pending_age_s": age,
                "parked": len(into.parked()),
            }
        },
        "inbox": {INBOUND: {"conflicts": into.conflicts(INBOUND)}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extracted.orders.sync")
    commands = parser.add_subparsers(dest="command", required=True)
    shown = commands.add_parser("status", help="this side's sync figures")
    shown.add_argument("--json", action="store_true")
    shown.add_argument("--parked", action="store_true", help="list the changes set aside")
    shown.add_argument("--stream", default=None)
    emit = commands.add_parser("emit", help="send orders again, as new changes made here")
    emit.add_argument("label", nargs="?", choices=[AGGREGATE])
    emit.add_argument("--ids", help="comma-separated order ids")
    emit.add_argument("--parked", action="store_true", help="every order set aside")
    emit.add_argument("--stream", default=None)
    digests.arguments(commands.add_parser("digest", help="this side's half of sync verify"))
    args = parser.parse_args(argv)
    if args.command == "digest":
        if args.entity is None:
            print(json.dumps({"entities": [AGGREGATE]}))
            return 0
        if args.entity != AGGREGATE:
            print(f"{args.entity!r}: only {AGGREGATE} is kept here", file=sys.stderr)
            return 2
        print(json.dumps(digests.report(states(store()), args.buckets, digests.only(args.only))))
        return 0
    if args.command == "emit":
        if args.parked:
            parked = store().parked()
            for item in parked:
                store().touch(int(item["order"]))
                store().unpark(int(item["order"]))
            print(f"emitted {len(parked)} set-aside orders again")
            return 0
        if not args.ids:
            parser.error("emit: give orders.Order --ids 1,2,… or --parked")
        ids = [int(i) for i in args.ids.split(",") if i.strip()]
        missing = [i for i in ids if not store().touch(i)]
        print(f"emitted {len(ids) - len(missing)} {AGGREGATE} changes")
        if missing:
            print(f"not in the table: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1 if missing else 0
    if args.parked:
        letters = [
            {
                "event": f"{AGGREGATE}:{item['order']}:{item['version']}",
                "stream": STREAM,
                "entity": f"{AGGREGATE}:{item['order']}",
                "parked_at": item.get("parked_at"),
                "error": item.get("error", ""),
            }
            for item in store().parked()
        ]
        print(json.dumps({"parked": letters}) if args.json else "\n".join(map(str, letters)))
        return 0
    figures = status(store())
    if args.json:
        print(json.dumps(figures))
        return 0
    for name, values in figures["streams"].items():
        print(f"{name}: {values['pending']} pending (oldest {values['oldest_pending_age_s']:.1f}s)")
    for name, values in figures["inbox"].items():
        print(f"{name}: {values['conflicts']} conflicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
