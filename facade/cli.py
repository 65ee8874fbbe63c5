"""The ``strangler`` command line.

One top-level handler (``main``) turns every ``StranglerError`` into a one-line message
on stderr and its exit code: 0 ok, 1 a check failed, 2 bad usage or configuration.
Read commands take ``--json`` and then print exactly one JSON document on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from facade import __version__
from facade.aws.cli import COMMANDS as AWS_COMMANDS
from facade.aws.cli import aws_options
from facade.exceptions import RoutingFileError, StranglerError
from facade.options import ROUTING
from facade.options import routing_option as _routing_option
from facade.rollout.canary_cli import canary
from facade.rollout.cli import rollout
from facade.shadow.cli import shadow
from facade.stack import run_stack
from facade.sync.cli import sync
from facade.topology import LocalConfig, build_stack

PORT = click.IntRange(1, 65535)


def _local_options(func: Any) -> Any:
    options = [
        _routing_option,
        click.option(
            "--host",
            default=None,
            envvar="STRANGLER_HOST",
            help="Address of the front door (default: facade.listen of routing.yaml).",
        ),
        click.option(
            "--port",
            type=PORT,
            default=None,
            envvar="STRANGLER_PORT",
            help="Port of the front door (default: facade.listen of routing.yaml).",
        ),
        click.option(
            "--env",
            "-e",
            "env",
            multiple=True,
            metavar="NAME=VALUE",
            help="Set a variable for the ${NAME} references of routing.yaml's local blocks "
            "(repeatable), e.g. -e DATABASE_URL=postgres://127.0.0.1/shop.",
        ),
        click.option(
            "--setup/--no-setup",
            default=True,
            show_default=True,
            help="Run the set-up commands (migrate, seed, import) before starting.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(**kw: Any) -> LocalConfig:
    env: dict[str, str] = {}
    for item in kw["env"]:
        name, sep, value = str(item).partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="--env")
        env[name] = value
    return LocalConfig(
        routing=kw["routing"], host=kw["host"], port=kw["port"], env=env, setup=kw["setup"]
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strangler")
def cli() -> None:
    """Take a Django monolith apart route by route."""


@cli.command()
@_local_options
@click.option(
    "--ready-timeout",
    type=click.FloatRange(1, 3600),
    default=120,
    show_default=True,
    help="Seconds every service has to answer its health check.",
)
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


@cli.command()
@click.argument("file", type=ROUTING, default="routing.yaml", envvar="STRANGLER_ROUTING")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(file: Path, as_json: bool) -> None:
    """Check a routing file against the model and AWS's limits (exit 2 if invalid)."""
    from facade.routing.loader import load_table

    try:
        table = load_table(file)
    except RoutingFileError as exc:
        if as_json:
            problems = [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "key": p.key,
                    "message": p.message,
                }
                for p in exc.problems
            ]
            click.echo(json.dumps({"valid": False, "problems": problems}, indent=2))
            sys.exit(exc.exit_code)
        raise
    split = [r.name for r in table.all_routes if r.is_split]
    # faults are injected by the local facade only: said here, so a file about to be
    # deployed does not carry them unnoticed
    faulty = [b.name for b in table.backends.values() if b.faults]
    if as_json:
        summary = {
            "valid": True,
            "file": str(file),
            "backends": len(table.backends),
            "routes": len(table.routes),
            "split": split,
            "faults": faulty,
        }
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"{file}: valid · {len(table.backends)} backends · {len(table.routes)} routes + default"
            + (f" · split: {', '.join(split)}" if split else "")
            + (f" · faults (local facade only): {', '.join(faulty)}" if faulty else "")
        )


def _parse_headers(values: tuple[str, ...]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: use 'Name: value'", param_hint="-H")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return headers


@cli.command()
@click.argument("method")
@click.argument("path")
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value', repeatable.")
@_routing_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def explain(method: str, path: str, headers: tuple[str, ...], routing: Path, as_json: bool) -> None:
    """Show which route METHOD PATH takes, its targets, and why earlier routes did not match."""
    from facade.proxy.normalize import BadPath, normalize_path
    from facade.routing.loader import load_table
    from facade.routing.matcher import Matcher

    table = load_table(routing)
    raw_path = path.split("?", 1)[0]
    try:
        normalized = normalize_path(raw_path)
    except BadPath as exc:
        raise click.BadParameter(f"{path!r}: the facade would answer 400: {exc}") from exc
    explanation = Matcher(table).explain(method.upper(), normalized, _parse_headers(headers))
    result = {"method": method.upper(), "path": normalized, **explanation.as_dict()}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    route = explanation.route
    click.echo(
        f"{method.upper()} {normalized} → route {route.name!r}"
        + (f" (priority {route.priority})" if route.name != "default" else "")
    )
    for target in route.targets:
        click.echo(f"  {target.backend:<24} {target.percent:5.1f} %")
    if route.fixed:
        click.echo(f"  answered by the facade (ALB fixed response): {route.fixed.status}")
    if route.stickiness:
        click.echo(f"  sticky for {route.stickiness.duration}s")
    if route.stable_key:
        click.echo(
            f"  stable key: {route.stable_key.header or 'cookie ' + str(route.stable_key.cookie)}"
        )
    for rejection in explanation.rejected:
        click.echo(f"  not {rejection.route}: {rejection.reason}")


@cli.command()
@_routing_option
@click.option("--host", default=None, help="Listen address (default: facade.listen).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Listen port (default: facade.listen; 0 picks a free one).",
)
@click.option(
    "--admin-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Admin listener port: health, metrics, admin API (default: facade.admin.listen).",
)
@click.option(
    "--cookie-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the sticky-cookie key in this file (created once) when none is configured.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stdout.",
)
def serve(
    routing: Path,
    host: str | None,
    port: int | None,
    admin_port: int | None,
    cookie_secret_file: Path | None,
    workers: int,
    access_log: bool,
) -> None:
    """Run the facade proxy: route each request as the ALB would."""
    from facade.proxy.live import preload
    from facade.proxy.run import serve as run_serve

    loaded = preload(routing)  # refuse to start on an invalid file
    settings = loaded.table.settings
    code = run_serve(
        routing,
        loaded,
        host if host is not None else settings.listen_host,
        port if port is not None else settings.listen_port,
        admin_port=admin_port,
        keep_secret=cookie_secret_file,
        workers=workers,
        access_log=access_log,
    )
    sys.exit(code)


def _apply_options(func: Any) -> Any:
    """--apply and where to: the route edits push the new weights to the ALB listener."""
    func = aws_options(listener_required=False)(func)
    return click.option(
        "--apply",
        "push",
        is_flag=True,
        help="Also change the ALB listener now; the file is written only if that succeeds.",
    )(func)


def _edit(
    action: str,
    route: str,
    routing: Path,
    backend: str | None,
    percent: float | None,
    as_json: bool,
    aws: dict[str, Any],
) -> None:
    from facade.routing.edit import apply_edit

    push = None
    if aws["push"]:
        from facade.aws.cli import push as push_table

        if not aws["listener"]:
            raise click.UsageError("--apply needs --listener ARN (or $STRANGLER_ALB_LISTENER)")

        def push(table: Any) -> None:
            push_table(table, aws["listener"], aws["use_aws"], aws["prefix"], aws["vpc"])

    change = apply_edit(routing, action, route, backend=backend, percent=percent, push=push)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "changed": change.changed,
                    "action": action,
                    "route": route,
                    "before": change.before,
                    "after": change.after,
                    "applied": bool(push),
                },
                indent=2,
            )
        )
    else:
        click.echo(change.describe() + ("" if change.changed else " (already so: nothing written)"))


@cli.command()
@click.argument("route")
@click.option("--to", "backend", required=True, help="The backend whose share is set.")
@click.option("--percent", type=click.FloatRange(0, 100), required=True)
@_routing_option
@click.option("--json", "as_json", is_flag=True)
@_apply_options
def shift(
    route: str, backend: str, percent: float, routing: Path, as_json: bool, **aws: Any
) -> None:
    """Give BACKEND PERCENT % of ROUTE; the other targets share the rest."""
    _edit("shift", route, routing, backend, percent, as_json, aws)


@cli.command()
@click.argument("route")
@click.option("--to", "backend", default=None, help="Default: the route's non-monolith backend.")
@_routing_option
@click.option("--json", "as_json", is_flag=True)
@_apply_options
def promote(route: str, backend: str | None, routing: Path, as_json: bool, **aws: Any) -> None:
    """Send 100 % of ROUTE to its new backend."""
    _edit("promote", route, routing, backend, None, as_json, aws)


@cli.command()
@click.argument("route")
@_routing_option
@click.option("--json", "as_json", is_flag=True)
@_apply_options
def rollback(route: str, routing: Path, as_json: bool, **aws: Any) -> None:
    """Send 100 % of ROUTE back to the monolith."""
    _edit("rollback", route, routing, None, None, as_json, aws)


@cli.group()
def fault() -> None:
    """Inject faults into a backend's requests in the local facade (never on AWS)."""


def _fault_result(change: Any, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "changed": change.changed,
                    "backend": change.backend,
                    "before": change.before,
                    "after": change.after,
                },
                indent=2,
            )
        )
    else:
        click.echo(change.describe() + ("" if change.changed else " (already so: nothing written)"))


@fault.command("set")
@click.argument("backend")
@click.option("--abort", "abort", type=click.FloatRange(0, 100), help="Percent to answer itself.")
@click.option("--status", type=click.IntRange(200, 599), default=503, show_default=True)
@click.option("--delay", "delay", type=click.FloatRange(0), help="Seconds to hold a request.")
@click.option("--delay-percent", type=click.FloatRange(0, 100), default=100, show_default=True)
@_routing_option
@click.option("--json", "as_json", is_flag=True)
def fault_set(
    backend: str,
    abort: float | None,
    status: int,
    delay: float | None,
    delay_percent: float,
    routing: Path,
    as_json: bool,
) -> None:
    """Make BACKEND's faults exactly these (what is not given is not injected)."""
    from facade.routing.edit import set_faults

    if abort is None and delay is None:
        raise click.UsageError("give --abort PERCENT, --delay SECONDS, or both")
    block: dict[str, dict[str, float]] = {}
    if abort is not None:
        block["abort"] = {"percent": abort, "status": status}
    if delay is not None:
        block["delay"] = {"percent": delay_percent, "seconds": delay}
    _fault_result(set_faults(routing, backend, block), as_json)


@fault.command("clear")
@click.argument("backend")
@_routing_option
@click.option("--json", "as_json", is_flag=True)
def fault_clear(backend: str, routing: Path, as_json: bool) -> None:
    """Inject nothing into BACKEND's requests any more."""
    from facade.routing.edit import set_faults

    _fault_result(set_faults(routing, backend, None), as_json)


@fault.command("show")
@_routing_option
@click.option("--json", "as_json", is_flag=True)
def fault_show(routing: Path, as_json: bool) -> None:
    """The faults of every backend that has some."""
    from facade.routing.edit import describe_faults
    from facade.routing.loader import load_table

    table = load_table(routing)
    faults = {n: b.faults.as_dict() for n, b in table.backends.items() if b.faults}
    if as_json:
        click.echo(json.dumps({"faults": faults}, indent=2))
        return
    for name, block in faults.items():
        click.echo(f"{name}: {describe_faults(block)}")
    if not faults:
        click.echo("no faults")


cli.add_command(sync)
cli.add_command(shadow)
cli.add_command(rollout)
cli.add_command(canary)
for _command in AWS_COMMANDS:
    cli.add_command(_command)


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


if __name__ == "__main__":
    main()
