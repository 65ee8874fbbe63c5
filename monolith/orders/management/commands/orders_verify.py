"""Compare the monolith's orders with the orders service's table:
``python -m monolith.manage orders_verify [--json]``.

Both sides are read as the sync carries an order (``orders.sync.order_state`` here, the
store's items there) and reduced to one digest per order (``extracted.orders.sync
.digest``). Memory stays bounded whatever the table size: a first pass folds the digests
into ``--buckets`` buckets by id (count and XOR per bucket) on each side; only the
buckets that differ are read again, id by id, to name the drifted orders. The
monolith's rows are read in keyset chunks, the table in scan pages.

Exits 1 when any order drifted. ``strangler sync verify`` reads ``--json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from extracted.orders.store import OrderStore
from extracted.orders.sync import digest
from monolith.orders.models import Order
from monolith.orders.sync import order_state

LABEL = "orders.Order"


def monolith_digests(chunk: int, buckets: set[int] | None, size: int) -> Iterator[tuple[int, str]]:
    after = 0
    while True:
        rows = list(
            Order.objects.filter(pk__gt=after).order_by("pk").prefetch_related("lines")[:chunk]
        )
        if not rows:
            return
        for order in rows:
            if buckets is None or order.pk % size in buckets:
                yield order.pk, digest(order_state(order))
        after = rows[-1].pk


def table_digests(
    store: OrderStore, buckets: set[int] | None, size: int
) -> Iterator[tuple[int, str]]:
    for item in store.every_order():
        order_id = int(item["id"])
        if buckets is None or order_id % size in buckets:
            yield order_id, digest(item)


def fold(digests: Iterator[tuple[int, str]], size: int) -> tuple[int, dict[int, tuple[int, int]]]:
    """(rows, bucket → (count, XOR of the digests))."""
    folded: dict[int, tuple[int, int]] = {}
    rows = 0
    for order_id, text in digests:
        count, mixed = folded.get(order_id % size, (0, 0))
        folded[order_id % size] = (count + 1, mixed ^ int(text[:32], 16))
        rows += 1
    return rows, folded


def compare(store: OrderStore, chunk: int, size: int) -> dict[str, Any]:
    here_rows, here = fold(monolith_digests(chunk, None, size), size)
    there_rows, there = fold(table_digests(store, None, size), size)
    differing = {b for b in set(here) | set(there) if here.get(b) != there.get(b)}
    drifted: list[int] = []
    if differing:
        mine = dict(monolith_digests(chunk, differing, size))
        for order_id, text in table_digests(store, differing, size):
            if mine.pop(order_id, None) != text:
                drifted.append(order_id)
        drifted.extend(mine)  # on the monolith only
    return {
        "monolith_rows": here_rows,
        "service_rows": there_rows,
        "buckets": size,
        "buckets_read_twice": len(differing),
        "drifted": sorted(drifted),
    }


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entity", default=None, help=f"only {LABEL} is compared")
        parser.add_argument("--chunk", type=int, default=2000, help="monolith rows per read")
        parser.add_argument("--buckets", type=int, default=1024)
        parser.add_argument(
            "--monolith-side",
            choices=["source", "target"],
            default="source",
            help="which end of the stream the monolith is (for strangler sync verify)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        from extracted.orders.handler import store_from_environment

        if options["entity"] not in (None, LABEL):
            self.stderr.write(f"{options['entity']!r}: only {LABEL} is compared")
            sys.exit(2)
        report = compare(store_from_environment(), options["chunk"], options["buckets"])
        ours, theirs = report["monolith_rows"], report["service_rows"]
        if options["monolith_side"] == "target":
            ours, theirs = theirs, ours
        figures = {
            "source_rows": ours,
            "target_rows": theirs,
            "drifted": [str(i) for i in report["drifted"]],
        }
        drift = len(report["drifted"])
        if options["json"]:
            self.stdout.write(json.dumps({"drift": drift, "entities": {LABEL: figures}}))
        else:
            shown = ", ".join(figures["drifted"][:20])
            self.stdout.write(
                f"{LABEL}: monolith {report['monolith_rows']:,} rows, orders service "
                f"{report['service_rows']:,} rows, {drift} drifted"
                + (f": {shown}" if drift else "")
            )
        if drift:
            sys.exit(1)
