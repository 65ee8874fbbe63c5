"""This side's half of ``strangler sync verify``: ``manage.py sync_digest --entity LABEL
--buckets N [--only 3,17]`` (the protocol is ``facade.sync.digest``'s).

An entity is rendered as the sync carries it — by its serialiser when this side
publishes it, else every column — read in primary-key order a chunk at a time, so
memory stays bounded whatever the table size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from facade.sync import digest
from facade.sync.django import registry
from facade.sync.django.serializers import concrete_fields

CHUNK = 2000


def states(model: type[models.Model]) -> Iterator[tuple[Any, dict[str, Any]]]:
    entity = registry.published().get(model)
    serialize = entity.serialize if entity else concrete_fields
    prefetch = []
    for part, key in (entity.parts if entity else {}).items():
        field = part._meta.get_field(key.removesuffix("_id"))
        remote = getattr(field, "remote_field", None)
        if remote is not None:
            prefetch.append(remote.get_accessor_name())
    rows = model._default_manager.order_by("pk").prefetch_related(*prefetch)
    after: Any = None
    while True:
        chunk = list((rows if after is None else rows.filter(pk__gt=after))[:CHUNK])
        if not chunk:
            return
        for instance in chunk:
            yield instance.pk, serialize(instance)
        after = chunk[-1].pk


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        digest.arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        label, stream = options["entity"], options["stream"]
        known = {p.label for p in registry.published().values() if p.stream == stream} | {
            a.label for a in registry.applied().values() if a.stream == stream
        }
        if label is None:
            self.stdout.write(json.dumps({"entities": sorted(known)}))
            return
        if label not in known:
            raise CommandError(
                f"{label!r} is not carried by {stream!r} here; it carries: "
                f"{', '.join(sorted(known)) or 'nothing'}",
                returncode=2,
            )
        model = apps.get_model(label)
        result = digest.report(states(model), options["buckets"], digest.only(options["only"]))
        self.stdout.write(json.dumps(result))
