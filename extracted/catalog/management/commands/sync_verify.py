"""Compare the catalog service's database with the monolith's:
``python -m extracted.catalog.manage sync_verify --source MONOLITH_DATABASE_URL``.

Prints counts and drifted ids per entity (``--json`` for tools; ``strangler sync verify``
reads it) and exits 1 when anything drifted.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import dj_database_url
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from extracted.catalog.verify import compare, entities


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="URL of the monolith's database")
        parser.add_argument("--entity", default=None, help="one label, e.g. catalog.Product")
        parser.add_argument("--chunk", type=int, default=5000)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        connections.databases["source"] = {
            **connections.databases["default"],
            **dj_database_url.parse(options["source"]),
            "OPTIONS": {},
            "CONN_MAX_AGE": 0,
        }
        try:
            labels = list(entities(options["entity"]))
        except KeyError as exc:
            raise CommandError(exc.args[0]) from exc
        reports = {label: compare(label, "source", chunk=options["chunk"]) for label in labels}
        drift = sum(len(r.drifted) for r in reports.values())
        if options["json"]:
            body = {"drift": drift, "entities": {k: r.as_dict() for k, r in reports.items()}}
            self.stdout.write(json.dumps(body))
        else:
            for label, report in reports.items():
                shown = ", ".join(str(i) for i in report.drifted[:20])
                more = f" (+{len(report.drifted) - 20} more)" if len(report.drifted) > 20 else ""
                self.stdout.write(
                    f"{label}: monolith {report.source_rows:,} rows, catalog "
                    f"{report.target_rows:,} rows, {len(report.drifted)} drifted"
                    + (f": {shown}{more}" if report.drifted else "")
                )
        if drift:
            sys.exit(1)
