"""``strangler shadow …``: read and clear what the shadow of a route has compared.

The store is the file named by the route's ``shadow.store`` (relative to the routing
file; ``var/shadow.sqlite3`` by default) — or ``--store``, to read a report after the
shadow block is gone.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from facade.exceptions import ConfigError
from facade.options import routing_option as _routing
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable
from facade.shadow import report as rendering
from facade.shadow import store as shadow_store

_store = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The shadow store (default: the route's shadow.store).",
)


def _where(routing: Path, route: str, store: Path | None) -> tuple[RoutingTable, Path]:
    table = load_table(routing)
    try:
        table.route(route)
    except KeyError as exc:
        raise ConfigError(f"{table.source}: {exc.args[0]}") from exc
    return table, store or shadow_store.store_file(table, route)


@click.group()
def shadow() -> None:
    """Shadow traffic: what a route's shadow backend answered differently."""


@shadow.command()
@click.argument("route")
@_routing
@_store
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def report(route: str, routing: Path, store: Path | None, as_json: bool) -> None:
    """The differences between ROUTE's primary and shadow answers, noise removed."""
    table, path = _where(routing, route, store)
    found = shadow_store.route_report(table, route, path)
    if as_json:
        click.echo(json.dumps(rendering.as_json(found), indent=2, ensure_ascii=False))
    else:
        click.echo(rendering.as_text(found))


@shadow.command()
@click.argument("route")
@_routing
@_store
def clear(route: str, routing: Path, store: Path | None) -> None:
    """Forget everything compared for ROUTE (start a fresh sample)."""
    _, path = _where(routing, route, store)
    count = shadow_store.clear(path, route)
    click.echo(f"{route}: {count} comparisons cleared from {path}")


__all__ = ["shadow"]
