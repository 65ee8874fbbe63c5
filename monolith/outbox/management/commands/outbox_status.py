"""The outbox's side of ``strangler sync status``: ``python -m monolith.manage outbox_status``.

Per stream: events waiting to be published, the age of the oldest of them (how far the
relay is behind), events published, and events SQS refused at least once; per stream it
applies (``settings.INBOX``), the conflicts its changes met here.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Min, Q
from django.utils import timezone

from monolith.outbox.models import OutboxEvent, SyncConflict
from monolith.outbox.registry import streams


def status() -> dict[str, dict[str, Any]]:
    now = timezone.now()
    result: dict[str, dict[str, Any]] = {}
    for stream in streams():
        figures = OutboxEvent.objects.filter(stream=stream).aggregate(
            pending=Count("id", filter=Q(published_at__isnull=True)),
            published=Count("id", filter=Q(published_at__isnull=False)),
            refused=Count("id", filter=Q(attempts__gt=0)),
            oldest=Min("created_at", filter=Q(published_at__isnull=True)),
        )
        oldest = figures.pop("oldest")
        figures["oldest_pending_age_s"] = (now - oldest).total_seconds() if oldest else 0.0
        result[stream] = figures
    return result


def inbox() -> dict[str, dict[str, Any]]:
    return {
        stream: {"conflicts": SyncConflict.objects.filter(stream=stream).count()}
        for stream in (getattr(settings, "INBOX", {}) or {})
    }


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        figures, applied = status(), inbox()
        if options["json"]:
            self.stdout.write(json.dumps({"streams": figures, "inbox": applied}))
            return
        for stream, values in figures.items():
            age = values["oldest_pending_age_s"]
            self.stdout.write(
                f"{stream}: {values['pending']} pending (oldest {age:.1f}s), "
                f"{values['published']} published, {values['refused']} refused at least once"
            )
        for stream, values in applied.items():
            self.stdout.write(f"{stream}: {values['conflicts']} conflicts met here")
