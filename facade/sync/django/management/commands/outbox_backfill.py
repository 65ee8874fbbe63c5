"""Stream existing rows into the sync: ``manage.py outbox_backfill LABEL``.

Writes an upsert event for every row of a registered model (``catalog.Product``), in
primary-key order and in chunks, each chunk in its own transaction; the relay then
publishes them like any change. Interrupted, it resumes after the last chunk written
(``--restart`` starts over). Events are versioned like every change, so rows that
change during the backfill end in their newest state downstream.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from facade.sync.django.models import BackfillProgress
from facade.sync.django.recording import record_ids
from facade.sync.django.registry import by_label


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("label", help="model label, e.g. catalog.Product")
        parser.add_argument("--chunk", type=int, default=2000)
        parser.add_argument("--restart", action="store_true", help="ignore earlier progress")
        parser.add_argument(
            "--unless-done", action="store_true", help="do nothing if a backfill finished before"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        published = by_label()
        model = published[options["label"]].model if options["label"] in published else None
        if model is None:
            known = ", ".join(sorted(published)) or "none"
            raise CommandError(f"{options['label']!r} is not published; published: {known}")
        progress, _ = BackfillProgress.objects.get_or_create(label=options["label"])
        if options["unless_done"] and progress.finished_at is not None and not options["restart"]:
            self.stdout.write(f"{options['label']}: backfilled before ({progress.rows:,} rows)")
            return
        if options["restart"] or progress.finished_at is not None:
            progress.last_id, progress.rows, progress.finished_at = 0, 0, None
            progress.save()
        rows = model._default_manager.order_by("pk")
        total = rows.count()
        started, done_before = time.monotonic(), progress.rows
        tty = sys.stderr.isatty()
        while True:
            ids = list(
                rows.filter(pk__gt=progress.last_id).values_list("pk", flat=True)[
                    : options["chunk"]
                ]
            )
            if not ids:
                break
            with transaction.atomic():
                record_ids(model, ids)
                progress.last_id, progress.rows = ids[-1], progress.rows + len(ids)
                progress.save(update_fields=["last_id", "rows"])
            rate = (progress.rows - done_before) / max(time.monotonic() - started, 1e-9)
            line = (
                f"{options['label']}: {progress.rows:,}/{total:,} rows "
                f"({100 * progress.rows / max(total, 1):.0f}%), {rate:,.0f} rows/s"
            )
            self.stderr.write(f"\r{line}" if tty else line, ending="" if tty else "\n")
        progress.finished_at = progress.updated_at = timezone.now()
        progress.save()
        elapsed = time.monotonic() - started
        rate = (progress.rows - done_before) / max(elapsed, 1e-9)
        if tty:
            self.stderr.write("")
        self.stdout.write(
            f"backfilled {progress.rows - done_before:,} {options['label']} rows in "
            f"{elapsed:.1f}s ({rate:,.0f} rows/s); the relay publishes them"
        )
