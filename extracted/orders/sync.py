"""The orders function's side of the sync: the monolith's order changes, applied here.

``lambda_handler`` is the function's SQS entry point for the ``orders-to-lambda`` stream
(a FIFO queue; on AWS an event source mapping with ``ReportBatchItemFailures``, locally
``python -m facade.sync.event_source`` plays that part). Powertools'
``SqsFifoPartialProcessor`` applies the records in order and, at the first that fails,
reports it and every record after it as ``batchItemFailures``: SQS gives them back in
order, and after the queue's ``max_receives`` moves a poison message to the DLQ.

Each record is judged by ``OrderStore.apply_remote`` (``facade.sync.versions``): a
duplicate or overtaken change does nothing, the greater stamp wins, and a change made
concurrently with one made here is recorded as a conflict.

``python -m extracted.orders.sync status --json`` prints this side's figures for
``strangler sync status``: changes waiting to be published, the age of the oldest, and
the conflicts each incoming stream met; ``emit orders.Order --ids 1,2`` sends orders
again as new changes (the repair of ``strangler sync verify --repair``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from extracted.orders.relay import AGGREGATE, STREAM
from extracted.orders.store import STAMP_FORMAT, OrderStore, money
from facade.sync.versions import Decision, Stamp

logger = Logger(service="orders-sync")
INBOUND = "orders-to-lambda"
processor = SqsFifoPartialProcessor()
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


def apply(body: Mapping[str, Any], into: OrderStore) -> Decision:
    """Apply one change of the monolith's; raises ``Unusable`` for a malformed one."""
    try:
        if body["aggregate"] != AGGREGATE:
            raise Unusable(f"not an order: {body['aggregate']!r}")
        if body["kind"] != "upsert" or not isinstance(body.get("data"), dict):
            raise Unusable(
                f"{body['kind']!r} event: orders are cancelled, not deleted, across the cut"
            )
        incoming = Stamp(int(body.get("rank", 0)), int(body["version"]), str(body["origin"]))
        base = Stamp.from_dict(body.get("base"))
        data = body["data"]
        if str(data.get("id")) != str(body["id"]):
            raise Unusable(f"event for order {body['id']} carries order {data.get('id')}")
    except (KeyError, TypeError, ValueError) as exc:
        raise Unusable(f"malformed event: {exc!r}") from exc
    return into.apply_remote(data, incoming, base, stream=str(body.get("stream") or INBOUND))


def record_handler(record: SQSRecord) -> None:
    decision = apply(json.loads(record.body), store())
    logger.debug("applied" if decision.apply else "kept", extra={"id": record.message_id})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


# -- comparing both sides ----------------------------------------------------------------


def _moment(value: Any) -> str:
    if not value:
        return "-"
    text = str(value)
    if text.endswith("Z") and "." in text and len(text) == 27:  # the store's own format
        moment = dt.datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def digest(order: Mapping[str, Any]) -> str:
    """A digest of what both sides must agree on about an order, whichever shape it is
    read in (the store's item, or the monolith's row rendered by ``order_state``)."""
    lines = sorted(
        (int(x["product"]), str(x["sku"]), int(x["quantity"]), money(str(x["unit_price"])))
        for x in order["lines"]
    )
    fields = [
        str(int(order["id"])),
        str(int(order["customer"])),
        str(order["status"]),
        str(order["currency"]),
        money(str(order["total"])),
        repr(lines),
        *(_moment(order.get(name)) for name in (
            "placed_at", "paid_at", "shipped_at", "cancelled_at", "updated_at"
        )),
        str(order.get("reservation") or "-"),
    ]  # fmt: skip
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def status(into: OrderStore) -> dict[str, Any]:
    pending = into.pending(limit=1000)
    oldest = min((str(o.get("updated_at") or o["placed_at"]) for o in pending), default=None)
    age = 0.0
    if oldest:
        moment = dt.datetime.strptime(oldest, STAMP_FORMAT).replace(tzinfo=dt.UTC)
        age = max(0.0, (dt.datetime.now(dt.UTC) - moment).total_seconds())
    return {
        "streams": {STREAM: {"pending": len(pending), "oldest_pending_age_s": age}},
        "inbox": {INBOUND: {"conflicts": into.conflicts(INBOUND)}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extracted.orders.sync")
    commands = parser.add_subparsers(dest="command", required=True)
    shown = commands.add_parser("status", help="this side's sync figures")
    shown.add_argument("--json", action="store_true")
    emit = commands.add_parser("emit", help="send orders again, as new changes made here")
    emit.add_argument("label", choices=[AGGREGATE])
    emit.add_argument("--ids", required=True, help="comma-separated order ids")
    args = parser.parse_args(argv)
    if args.command == "emit":
        ids = [int(i) for i in args.ids.split(",") if i.strip()]
        missing = [i for i in ids if not store().touch(i)]
        print(f"emitted {len(ids) - len(missing)} {AGGREGATE} changes")
        if missing:
            print(f"not in the table: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1 if missing else 0
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
