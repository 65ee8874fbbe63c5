"""The ``strangler`` command line.

One top-level handler (``main``) turns every ``StranglerError`` into a one-line message
on stderr and its exit code: 0 ok, 1 a check failed, 2 bad usage or configuration.
Read commands take ``--json`` and then print exactly one JSON document on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from facade import __version__
from facade.exceptions import StranglerError
from facade.stack import run_stack
from facade.topology import LocalConfig, SeedSize, build_stack

PORT = click.IntRange(1, 65535)
COUNT = click.IntRange(min=0)


def _local_options(func: Any) -> Any:
    options = [
        click.option("--host", default="127.0.0.1", show_default=True, envvar="STRANGLER_HOST",
                     help="Address of the front door."),
        click.option("--port", type=PORT, default=8000, show_default=True, envvar="STRANGLER_PORT",
                     help="Port of the front door."),
        click.option("--database-url", envvar="DATABASE_URL", default=None,
                     help="Monolith database (default: embedded SQLite under var/)."),
        click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
                     help="gunicorn worker processes of the monolith."),
        click.option("--seed/--no-seed", "do_seed", default=True, show_default=True,
                     help="Seed sample data when the database is empty."),
        click.option("--products", type=COUNT, default=500, show_default=True),
        click.option("--customers", type=COUNT, default=200, show_default=True),
        click.option("--orders", type=COUNT, default=2000, show_default=True),
        click.option("--random-seed", type=int, default=42, show_default=True,
                     help="Seed of the sample data: same seed, same data."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _config(**kw: Any) -> LocalConfig:
    seed = (
        SeedSize(kw["products"], kw["customers"], kw["orders"], kw["random_seed"])
        if kw["do_seed"]
        else None
    )
    return LocalConfig(
        host=kw["host"],
        port=kw["port"],
        database_url=kw["database_url"],
        workers=kw["workers"],
        seed=seed,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strangler")
def cli() -> None:
    """Take a Django monolith apart route by route."""


@cli.command()
@_local_options
@click.option("--ready-timeout", type=click.FloatRange(1, 3600), default=120, show_default=True,
              help="Seconds every service has to answer its health check.")  # fmt: skip
def up(ready_timeout: float, **kw: Any) -> None:
    """Run the whole local stack in the foreground (Ctrl-C stops it)."""
    stack = build_stack(_config(**kw))

    def say(line: str) -> None:
        click.echo(f"strangler | {line}")

    code = run_stack(stack, dict(os.environ), say, ready_timeout=ready_timeout)
    sys.exit(code)


@cli.command()
@_local_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def stack(as_json: bool, **kw: Any) -> None:
    """Show what `strangler up` would run, and where, without running it."""
    described = build_stack(_config(**kw)).describe()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    click.echo(f"front door: {described['front_door']}")
    for step in described["setup"]:
        click.echo(f"setup    {step['name']:<10} {step['command']}")
    for svc in described["services"]:
        click.echo(f"service  {svc['name']:<10} {svc['url']}  ({svc['role']})")
        click.echo(f"         {'':<10} {svc['command']}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``strangler`` console script."""
    try:
        cli.main(args=argv, prog_name="strangler", standalone_mode=False)
    except StranglerError as exc:
        click.echo(f"strangler: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("strangler: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


__all__ = ["cli", "main"]
