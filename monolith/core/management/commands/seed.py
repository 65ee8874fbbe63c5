"""``manage.py seed``: deterministic sample data (see ``monolith.core.seeding``)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monolith.core import seeding


class Command(BaseCommand):
    help = "Fill the shop with deterministic, realistic sample data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=500)
        parser.add_argument("--customers", type=int, default=200)
        parser.add_argument("--orders", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=42, help="same seed, same data")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--if-empty", action="store_true", help="do nothing when the shop already has data"
        )
        mode.add_argument(
            "--reset", action="store_true", help="delete all shop data and accounts first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for key in ("products", "customers", "orders"):
            if options[key] < 0:
                raise CommandError(f"--{key} must be 0 or more, got {options[key]}.")
        if options["orders"] and not (options["products"] and options["customers"]):
            raise CommandError("--orders needs at least one product and one customer.")

        existing = seeding.shop_row_count()
        if existing and options["if_empty"]:
            self.stdout.write(f"The shop already has data ({existing} rows); not seeding.")
            return
        if existing and not options["reset"]:
            raise CommandError(
                f"The shop already has data ({existing} rows). "
                "Pass --reset to replace it, or --if-empty to keep it."
            )
        if options["reset"]:
            seeding.reset_shop()

        started = time.perf_counter()
        counts = seeding.seed_shop(
            products=options["products"],
            customers=options["customers"],
            orders=options["orders"],
            seed=options["seed"],
            progress=lambda msg: self.stdout.write(f"  {msg}"),
        )
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {counts.categories} categories, {counts.products} products, "
                f"{counts.customers} customers, {counts.orders} orders "
                f"({counts.order_lines} lines) in {elapsed:.1f}s with seed {options['seed']}."
            )
        )
        self.stdout.write(
            f"Log in as {seeding.STAFF_EMAIL} / {seeding.STAFF_PASSWORD} (staff) or "
            f"customer1@example.com / {seeding.DEMO_PASSWORD}."
        )
