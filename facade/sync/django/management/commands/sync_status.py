"""This side's part of ``strangler sync status``: ``manage.py sync_status [--json]``.

Per stream it publishes: events waiting to be published, the age of the oldest of them
(how far the relay is behind), events published, events SQS refused at least once,
events waiting for a retry, and events set aside (``parked``: too large, or refused for
good — ``--parked`` lists them). Per stream it applies: the conflicts its changes met
here.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Min, Q
from django.utils import timezone

from facade.sync.django.models import OutboxEvent, SyncConflict
from facade.sync.django.registry import applied_streams, streams


def status() -> dict[str, dict[str, Any]]:
    now = timezone.now()
    result: dict[str, dict[str, Any]] = {}
    for stream in streams():
        waiting = Q(published_at__isnull=True, parked_at__isnull=True)
        figures = OutboxEvent.objects.filter(stream=stream).aggregate(
            pending=Count("id", filter=waiting),
            published=Count("id", filter=Q(published_at__isnull=False)),
            refused=Count("id", filter=Q(attempts__gt=0)),
            retrying=Count("id", filter=waiting & Q(retry_at__gt=now)),
            parked=Count("id", filter=Q(parked_at__isnull=False)),
            oldest=Min("created_at", filter=waiting),
        )
        oldest = figures.pop("oldest")
        figures["oldest_pending_age_s"] = (now - oldest).total_seconds() if oldest else 0.0
        result[stream] = figures
    return result


def inbox() -> dict[str, dict[str, Any]]:
    return {
        stream: {"conflicts": SyncConflict.objects.filter(stream=stream).count()}
        for stream in applied_streams()
    }


def parked(stream: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    rows = OutboxEvent.objects.filter(parked_at__isnull=False).order_by("id")
    if stream:
        rows = rows.filter(stream=stream)
    return [
        {
            "event": str(row.event_id),
            "stream": row.stream,
            "entity": f"{row.aggregate}:{row.aggregate_id}",
            "parked_at": row.parked_at.isoformat() if row.parked_at else None,
            "attempts": row.attempts,
            "error": row.last_error,
        }
        for row in rows[:limit]
    ]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--parked", action="store_true", help="list set-aside events")
        parser.add_argument("--stream", help="with --parked: only this stream's")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["parked"]:
            letters = parked(options["stream"])
            if options["json"]:
                self.stdout.write(json.dumps({"parked": letters}))
                return
            for letter in letters:
                when, error = letter["parked_at"], letter["error"]
                self.stdout.write(f"{letter['event']}  {letter['entity']}  {when}  {error}")
            return
        figures, applied = status(), inbox()
        if options["json"]:
            self.stdout.write(json.dumps({"streams": figures, "inbox": applied}))
            return
        for stream, values in figures.items():
            age = values["oldest_pending_age_s"]
            self.stdout.write(
                f"{stream}: {values['pending']} pending (oldest {age:.1f}s), "
                f"{values['published']} published, {values['refused']} refused at least once, "
                f"{values['parked']} set aside"
            )
        for stream, values in applied.items():
            self.stdout.write(f"{stream}: {values['conflicts']} conflicts met here")
