"""``strangler canary``: canary a new version of a Lambda backend with its ``canary:``
plan, in the foreground, and watch or steer it from any other terminal — the same
commands, exit codes and state as ``strangler rollout``, keyed ``BACKEND@canary``.

    strangler canary start BACKEND [--apply [--aws]] [--restart]
    strangler canary status [BACKEND] [--json]
    strangler canary pause|resume|abort BACKEND
    strangler canary promote BACKEND [--full]

``--apply`` moves AWS too (the alias' version weights, or the REST API stage's canary),
read back before each step counts; without ``--aws`` it — and ``analysis.provider:
cloudwatch`` — reaches the file's local stand-in (``local.aws``).
Exit codes of ``start`` and ``resume``: 0 promoted, 1 rolled back, 2 bad input, 3
paused for a human.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from facade.exceptions import ConfigError
from facade.options import routing_option
from facade.rollout.cli import _line, _metrics_option, _who, settle
from facade.rollout.controller import describe
from facade.rollout.engine import RolloutState
from facade.rollout.function_canary import (
    CanaryController,
    VersionMover,
    traffic_for,
    version_provider,
)
from facade.rollout.plan import Provider, VersionCanary, canary_key
from facade.rollout.providers import FacadeVersionProvider, MetricsProvider
from facade.rollout.state import RolloutStore, state_dir
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable


def _canary(table: RoutingTable, routing: Path, backend: str) -> VersionCanary:
    found = table.backends.get(backend)
    if found is None:
        raise ConfigError(f"no backend named {backend!r}; backends: {', '.join(table.backends)}")
    if found.canary is None:
        raise ConfigError(
            f"{routing}: backend {backend!r} has no canary block (README: Canary a new "
            "version of a function)"
        )
    return found.canary


def _provider(
    table: RoutingTable,
    canary: VersionCanary,
    metrics_url: str | None,
    use_aws: bool,
    started: float,
) -> MetricsProvider:
    if canary.plan.analysis.provider is Provider.CLOUDWATCH:
        from facade.aws.cloudwatch import CloudWatchClient

        if use_aws:
            cloudwatch = CloudWatchClient.connect()
        else:
            from facade.aws_local import CREDENTIALS, stand_ins

            cloudwatch = CloudWatchClient.connect(stand_ins(table).endpoint, CREDENTIALS)
        return version_provider(table, canary, started, cloudwatch)
    settings = table.settings
    url = metrics_url or f"http://{settings.admin_host}:{settings.admin_port}"
    return FacadeVersionProvider(url, canary.backend)


def _controller(
    routing: Path, backend: str, metrics_url: str | None, apply: bool, use_aws: bool
) -> CanaryController:
    table = load_table(routing)
    canary = _canary(table, routing, backend)
    traffic = None
    if apply:
        from facade.aws.lambda_client import FunctionClient

        if use_aws:
            client = FunctionClient.connect()
        else:
            from facade.aws_local import CREDENTIALS, stand_ins

            client = FunctionClient.connect(stand_ins(table).endpoint, CREDENTIALS)
        traffic = traffic_for(canary, table, client)
    gates = None
    if canary.plan.gates.sync is not None:
        from facade.rollout.gates import route_gates

        gates = route_gates(table, routing, canary.plan, use_aws)

    def say(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} canary | {line}")

    store = RolloutStore(state_dir(routing), canary_key(backend))
    saved = store.load()
    started = saved.started if saved is not None and not saved.phase.finished else time.time()
    return CanaryController(
        routing,
        canary_key(backend),
        store,
        _provider(table, canary, metrics_url, use_aws, started),
        who=f"canary ({_who()})",
        gates=gates,
        say=say,
        mover=VersionMover(routing, backend, traffic),
    )


def _aws_flags(func: Any) -> Any:
    func = click.option("--aws", "use_aws", is_flag=True, help="AWS itself, not the stand-in.")(
        func
    )
    return click.option(
        "--apply",
        is_flag=True,
        help="Move AWS too: the alias' version weights or the stage's canary, read back.",
    )(func)


@click.group()
def canary() -> None:
    """Canary a new version of a Lambda backend, judged version against version."""


@canary.command()
@click.argument("backend")
@routing_option
@click.option("--restart", is_flag=True, help="Start over instead of continuing.")
@_metrics_option
@_aws_flags
def start(
    backend: str,
    routing: Path,
    restart: bool,
    metrics_url: str | None,
    apply: bool,
    use_aws: bool,
) -> None:
    """Run BACKEND's canary plan in the foreground (continues one under way)."""
    controller = _controller(routing, backend, metrics_url, apply, use_aws)
    sys.exit(controller.run(restart=restart))


def _send(routing: Path, backend: str, command: str, **args: Any) -> RolloutStore:
    store = RolloutStore(state_dir(routing), canary_key(backend))
    if store.load() is None:
        raise ConfigError(
            f"backend {backend!r} has no canary under way; start one with "
            f"`strangler canary start {backend}`"
        )
    number = store.send(command, _who(), **args)
    click.echo(f"{command} sent to the canary of {backend} (#{number})")
    return store


def _report(backend: str, state: RolloutState | None) -> None:
    if state is not None:
        why = state.reason or state.paused_reason
        click.echo(f"{backend}: {state.phase}" + (f" — {why}" if why else ""))


def _steer(name: str, help_text: str, timeout: float) -> None:
    @canary.command(name=name, help=help_text)
    @click.argument("backend")
    @routing_option
    @_metrics_option
    @_aws_flags
    def command(
        backend: str, routing: Path, metrics_url: str | None, apply: bool, use_aws: bool
    ) -> None:
        store = _send(routing, backend, name)
        controller = _controller(routing, backend, metrics_url, apply, use_aws)
        _report(backend, settle(store, controller, timeout))


_steer("abort", "Roll BACKEND's new version back now: it gets 0 %.", 120)
_steer("pause", "Hold BACKEND's canary at its weight until `resume`.", 30)


@canary.command()
@click.argument("backend")
@routing_option
@click.option("--full", is_flag=True, help="Straight to 100 % and promoted.")
@_metrics_option
@_aws_flags
def promote(
    backend: str,
    routing: Path,
    full: bool,
    metrics_url: str | None,
    apply: bool,
    use_aws: bool,
) -> None:
    """Skip BACKEND's canary ahead to its next step (recorded in the audit log)."""
    store = _send(routing, backend, "promote", full=full)
    controller = _controller(routing, backend, metrics_url, apply, use_aws)
    _report(backend, settle(store, controller, 120))


@canary.command()
@click.argument("backend")
@routing_option
@_metrics_option
@_aws_flags
def resume(
    backend: str, routing: Path, metrics_url: str | None, apply: bool, use_aws: bool
) -> None:
    """Resume a paused canary and run it in the foreground (same exit codes as start)."""
    store = _send(routing, backend, "resume")
    if store.holder() is not None:
        _report(backend, settle(store, None, 30))
        return
    sys.exit(_controller(routing, backend, metrics_url, apply, use_aws).run())


@canary.command()
@click.argument("backend", required=False)
@routing_option
@click.option("--json", "as_json", is_flag=True)
def status(backend: str | None, routing: Path, as_json: bool) -> None:
    """Where BACKEND's canary is (default: every backend's): state, step, configured and
    observed weights of the two versions, each verdict with its numbers."""
    directory = state_dir(routing)
    table = load_table(routing)
    names = (
        [backend]
        if backend
        else sorted(p.stem.removesuffix("@canary") for p in directory.glob("*@canary.json"))
    )
    views = []
    for name in names:
        store = RolloutStore(directory, canary_key(name))
        state = store.load()
        if state is None:
            if backend:
                raise ConfigError(f"backend {backend!r} has no canary")
            continue
        found = table.backends.get(name)
        plan = found.canary.plan if found is not None and found.canary is not None else None
        view = describe(state, plan, store.holder())
        view["backend"] = name
        views.append(view)
    if as_json:
        click.echo(json.dumps(views[0] if backend else views, indent=2, default=str))
        return
    for view in views:
        click.echo("\n".join(_line(view)))
    if not views:
        click.echo("no canaries")


__all__ = ["canary"]
