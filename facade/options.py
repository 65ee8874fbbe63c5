"""Command-line options shared by the ``strangler`` commands and the ``strangler sync`` group."""

from __future__ import annotations

from pathlib import Path

import click

ROUTING = click.Path(dir_okay=False, path_type=Path)

routing_option = click.option(
    "--routing",
    "-f",
    "routing",
    type=ROUTING,
    default="routing.yaml",
    show_default=True,
    envvar="STRANGLER_ROUTING",
    help="The route table.",
)
