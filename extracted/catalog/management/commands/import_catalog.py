"""Copy the catalog (categories, products, stock) from the monolith's database.

``python -m extracted.catalog.manage import_catalog --source DATABASE_URL [--if-empty]``

A snapshot for a fresh service: rows are read in chunks and bulk-inserted with their
ids, in one transaction, then the id sequences are reset. Keeping the copy current is
the data sync's job; this only fills an empty database (``--if-empty`` skips a filled
one, ``--replace`` empties it first).
"""

from __future__ import annotations

import time
from typing import Any

import dj_database_url
from django.core.management import color
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction

from monolith.catalog.models import Category, Product, StockLevel

CHUNK = 2000
MODELS: tuple[Any, ...] = (Category, Product, StockLevel)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="URL of the monolith's database")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--if-empty", action="store_true", help="skip when rows exist")
        group.add_argument("--replace", action="store_true", help="delete existing rows first")

    def handle(self, *args: Any, **options: Any) -> None:
        connections.databases["source"] = {
            **connections.databases["default"],
            **dj_database_url.parse(options["source"]),
            "OPTIONS": {},
            "CONN_MAX_AGE": 0,
        }
        started = time.monotonic()
        has_rows = Product.objects.exists() or Category.objects.exists()
        if has_rows and options["if_empty"]:
            self.stdout.write("catalog already has rows; nothing imported (--if-empty)")
            return
        if has_rows and not options["replace"]:
            raise CommandError("the catalog database has rows; use --replace or --if-empty")
        counts: dict[str, int] = {}
        with transaction.atomic():
            for model in reversed(MODELS):
                model.objects.all().delete()
            # parents before children: a category's parent is inserted before it
            categories = list(Category.objects.using("source").order_by("parent_id", "id"))
            self._copy(Category, _parents_first(categories), counts)
            for model in MODELS[1:]:
                rows = model.objects.using("source").order_by("pk").iterator(chunk_size=CHUNK)
                self._copy(model, rows, counts)
            self._reset_sequences()
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(f"imported {summary} in {elapsed:.1f}s")

    def _copy(self, model: Any, rows: Any, counts: dict[str, int]) -> None:
        batch: list[Any] = []
        total = 0
        for row in rows:
            row._state.db = "default"
            row._state.adding = True
            batch.append(row)
            if len(batch) >= CHUNK:
                model.objects.bulk_create(batch)
                total += len(batch)
                batch = []
        if batch:
            model.objects.bulk_create(batch)
            total += len(batch)
        counts[str(model._meta.verbose_name_plural)] = total

    def _reset_sequences(self) -> None:
        connection = connections["default"]
        statements = connection.ops.sequence_reset_sql(color.no_style(), list(MODELS))
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _parents_first(categories: list[Category]) -> list[Category]:
    by_id = {c.pk: c for c in categories}
    placed: set[int] = set()
    ordered: list[Category] = []

    def place(category: Category) -> None:
        if category.pk in placed:
            return
        if category.parent_id is not None and category.parent_id in by_id:
            place(by_id[category.parent_id])
        placed.add(category.pk)
        ordered.append(category)

    for category in categories:
        place(category)
    return ordered
