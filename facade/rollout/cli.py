"""``strangler rollout``: start a route's rollout in the foreground, and watch or steer it
from any other terminal.

    strangler rollout start ROUTE [--apply --listener ARN] [--restart]
    strangler rollout status [ROUTE] [--json] [--watch]
    strangler rollout pause|resume|abort ROUTE
    strangler rollout promote ROUTE [--full]

Exit codes of ``start`` (and ``resume``, which continues in the foreground): 0 promoted,
1 rolled back, 2 bad input, 3 paused for a human.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from facade.aws.alb import DEFAULT_PREFIX
from facade.aws.cli import aws_options
from facade.exceptions import ConfigError, StranglerError
from facade.options import routing_option
from facade.rollout.controller import Controller, describe
from facade.rollout.engine import Phase, RolloutState
from facade.rollout.plan import Provider, RolloutPlan
from facade.rollout.providers import FacadeProvider, MetricsProvider, PrometheusProvider
from facade.rollout.state import LeaseHeld, RolloutStore, state_dir
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable


def _who() -> str:
    from facade.routing.edit import _who as who

    return who()


def provider_for(
    table: RoutingTable,
    plan: RolloutPlan,
    metrics_url: str | None,
    started: float,
    aws: dict[str, Any] | None = None,
) -> MetricsProvider:
    analysis = plan.analysis
    if analysis.provider is Provider.PROMETHEUS:
        assert analysis.prometheus is not None  # the loader requires it
        return PrometheusProvider(analysis.prometheus)
    if analysis.provider is Provider.CLOUDWATCH:
        from facade.rollout.cloudwatch import cloudwatch_provider

        aws = aws or {}
        return cloudwatch_provider(
            table,
            plan,
            started,
            listener=aws.get("listener"),
            use_aws=bool(aws["use_aws"]) if "use_aws" in aws else None,
            prefix=str(aws.get("prefix") or DEFAULT_PREFIX),
        )
    settings = table.settings
    return FacadeProvider(metrics_url or f"http://{settings.admin_host}:{settings.admin_port}")


def _controller(
    routing: Path, route: str, aws: dict[str, Any], metrics_url: str | None
) -> Controller:
    table = load_table(routing)
    found = table.route(route) if route in {r.name for r in table.all_routes} else None
    if found is None:
        raise ConfigError(
            f"no route named {route!r}; routes: {', '.join(r.name for r in table.all_routes)}"
        )
    if found.rollout is None:
        raise ConfigError(f"{routing}: route {route!r} has no rollout block")
    plan = found.rollout
    store = RolloutStore(state_dir(routing), route)
    saved = store.load()
    under_way = saved is not None and not saved.phase.finished
    started = saved.started if saved is not None and under_way else time.time()
    if under_way and saved is not None and saved.apply is not None and not aws.get("push"):
        if not saved.apply.get("listener"):
            raise ConfigError(
                f"the rollout of {route} moves the ALB's weights too: add --apply --listener "
                "ARN (and --aws) so its weights move there as well"
            )
        aws = {**aws, **saved.apply, "push": True}  # a rollout that went to AWS stays there
    apply_to = None
    push = read_back = None
    if aws.get("push"):
        if not aws.get("listener"):
            raise click.UsageError("--apply needs --listener ARN (or $STRANGLER_ALB_LISTENER)")
        from facade.aws import cli as aws_cli

        apply_to = {k: aws.get(k) for k in ("listener", "use_aws", "prefix", "vpc")}

        def push(new: RoutingTable) -> None:
            aws_cli.push(new, aws["listener"], aws["use_aws"], aws["prefix"], aws["vpc"])

        def read_back(new: RoutingTable) -> float:
            return aws_cli.weight_in_force(
                new, route, plan.to, aws["listener"], aws["use_aws"], aws["prefix"]
            )

    gates = None
    if plan.gates.sync is not None or plan.gates.shadow is not None:
        from facade.rollout.gates import route_gates

        gates = route_gates(table, routing, plan, bool(aws.get("use_aws")))

    def say(line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        click.echo(f"{stamp} rollout | {line}")

    return Controller(
        routing,
        route,
        store,
        provider_for(table, plan, metrics_url, started, aws),
        who=f"rollout ({_who()})",
        push=push,
        read_back=read_back,
        gates=gates,
        gates_start=gates.start if gates is not None else None,
        apply_to=apply_to,
        say=say,
    )


def _metrics_option(func: Any) -> Any:
    return click.option(
        "--metrics-url",
        default=None,
        envvar="STRANGLER_METRICS_URL",
        help="The facade's admin listener to read metrics from (default: facade.admin.listen).",
    )(func)


@click.group()
def rollout() -> None:
    """Move a route to its new backend step by step, judged on live traffic."""


@rollout.command()
@click.argument("route")
@routing_option
@click.option(
    "--restart", is_flag=True, help="Start over instead of continuing a rollout under way."
)
@_metrics_option
@aws_options(listener_required=False)
@click.option(
    "--apply",
    "push",
    is_flag=True,
    help="Move the ALB listener's weights too (read back each step).",
)
def start(route: str, routing: Path, restart: bool, metrics_url: str | None, **aws: Any) -> None:
    """Run ROUTE's rollout plan in the foreground (continues one under way)."""
    sys.exit(_run(_controller(routing, route, aws, metrics_url), route, restart=restart))


EXIT_ERROR = 4  # the controller stopped on an error: the state is kept, nothing decided


def _run(controller: Controller, route: str, *, restart: bool = False) -> int:
    """The controller's exit code; an error that is not bad input is 4, never one of the
    codes that mean promoted, rolled back or paused."""
    try:
        return controller.run(restart=restart)
    except ConfigError:
        raise
    except Exception as exc:  # AWS, a provider, a bug: say so, keep the state
        if not isinstance(exc, StranglerError):
            traceback.print_exc()
        click.echo(
            f"strangler: error: the rollout of {route} stopped: {exc}; its state is kept "
            f"(`strangler rollout status {route}`), start it again to continue",
            err=True,
        )
        return EXIT_ERROR


def _send(
    routing: Path, route: str, command: str, **args: Any
) -> tuple[RolloutStore, RolloutState]:
    store = RolloutStore(state_dir(routing), route)
    state = store.load()
    if state is None:
        raise ConfigError(
            f"route {route!r} has no rollout; start one with `strangler rollout start {route}`"
        )
    number = store.send(command, _who(), **args)
    click.echo(f"{command} sent to the rollout of {route} (#{number})")
    return store, state


def settle_route(
    routing: Path,
    route: str,
    store: RolloutStore,
    aws: dict[str, Any],
    metrics_url: str | None,
    timeout: float,
) -> RolloutState | None:
    """A route rollout's command carried out (``settle``); an abort also when the route's
    plan is gone."""
    controller = None
    if store.holder() is None:
        try:
            controller = _controller(routing, route, aws, metrics_url)
        except ConfigError as exc:
            waiting = store.commands((store.load() or _NONE).commands_seen)
            if not any(c["command"] == "abort" for c in waiting):
                raise
            return _abort_without_plan(routing, store, aws, str(exc))
    return settle(store, controller, timeout)


def settle(
    store: RolloutStore, controller: Controller | None, timeout: float
) -> RolloutState | None:
    """With a controller running: wait until it has read the commands sent (None if it
    has not within ``timeout``). Without one: carry them out here, under the lease, with
    the controller's own code — a change a dead controller left half done first."""
    if store.holder() is None and controller is not None:
        try:
            with store.lease():
                state = store.load()
                assert state is not None
                controller.recover(state)
                controller.handle_commands(state)
                return state
        except LeaseHeld:
            pass  # a controller started meanwhile: it reads the command
    deadline = time.monotonic() + timeout
    wanted = len(store.commands(0))
    while time.monotonic() < deadline:
        state = store.load()
        if state is not None and state.commands_seen >= wanted and state.pending is None:
            return state
        time.sleep(0.2)
    return None


_NONE = RolloutState("", "", "", 0.0)


def _abort_without_plan(
    routing: Path, store: RolloutStore, aws: dict[str, Any], why: str
) -> RolloutState | None:
    """An abort when the route's plan is gone (or invalid): the state knows the route and
    the canary, which is all a rollback needs."""
    from facade.routing.edit import apply_edit

    with store.lease():
        state = store.load()
        if state is None or state.phase.finished:
            return state
        push = None
        if state.apply is not None:
            given = {**state.apply, **{k: v for k, v in aws.items() if v}}
            if not given.get("listener"):
                raise ConfigError(
                    f"the rollout of {state.route} moved the ALB's weights too: add --apply "
                    "--listener ARN (and --aws) to roll it back there as well"
                )
            from facade.aws import cli as aws_cli

            def push(new: RoutingTable) -> None:
                aws_cli.push(
                    new, given["listener"], bool(given.get("use_aws")),
                    str(given.get("prefix") or DEFAULT_PREFIX), given.get("vpc"),
                )  # fmt: skip

        apply_edit(routing, "shift", state.route, backend=state.canary, percent=0,
                   who=f"rollout ({_who()})", push=push)  # fmt: skip
        state.pending = None
        state.configured = 0
        state.commands_seen = len(store.commands(0))
        state.phase = Phase.ROLLED_BACK
        state.reason = f"aborted by {_who()} (without its plan: {why})"
        state.record(time.time(), "rolled_back", reason=state.reason)
        store.save(state)
        return state


def _report(state: RolloutState | None) -> None:
    if state is not None:
        click.echo(
            f"{state.route}: {state.phase}"
            + (
                f" — {state.reason or state.paused_reason}"
                if (state.reason or state.paused_reason)
                else ""
            )
        )


@rollout.command()
@click.argument("route")
@routing_option
@_metrics_option
@aws_options(listener_required=False)
@click.option("--apply", "push", is_flag=True, help="An abort moves the ALB listener too.")
def abort(route: str, routing: Path, metrics_url: str | None, **aws: Any) -> None:
    """Roll ROUTE back now: its new backend gets 0 %."""
    store, _ = _send(routing, route, "abort")
    state = settle_route(routing, route, store, aws, metrics_url, 120)
    _report(state)
    if state is None or str(state.phase) != "rolled_back":
        click.echo(
            f"strangler: the abort of {route} is not carried out yet: the controller (pid "
            f"{store.holder()}) has not read it; it will when its current action ends",
            err=True,
        )
        sys.exit(EXIT_ERROR)


@rollout.command()
@click.argument("route")
@routing_option
def pause(route: str, routing: Path) -> None:
    """Hold ROUTE at its weight until `resume` (the controller stops, exit 3)."""
    store, _ = _send(routing, route, "pause")
    _report(settle_route(routing, route, store, {}, None, 30))


@rollout.command()
@click.argument("route")
@routing_option
@click.option(
    "--full", is_flag=True, help="Straight to 100 % and promoted, not just the next step."
)
@_metrics_option
@aws_options(listener_required=False)
@click.option("--apply", "push", is_flag=True, help="Move the ALB listener's weights too.")
def promote(route: str, routing: Path, full: bool, metrics_url: str | None, **aws: Any) -> None:
    """Skip ROUTE's rollout ahead to its next step (recorded in the audit log)."""
    store, _ = _send(routing, route, "promote", full=full)
    _report(settle_route(routing, route, store, aws, metrics_url, 120))


@rollout.command()
@click.argument("route")
@routing_option
@_metrics_option
@aws_options(listener_required=False)
@click.option("--apply", "push", is_flag=True, help="Move the ALB listener's weights too.")
def resume(route: str, routing: Path, metrics_url: str | None, **aws: Any) -> None:
    """Resume a paused rollout and run it in the foreground (same exit codes as start)."""
    found = RolloutStore(state_dir(routing), route).load()
    if found is not None and found.phase.finished:
        raise ConfigError(
            f"the rollout of {route} is over ({found.phase}); nothing to resume — start a new "
            f"one with `strangler rollout start {route}`"
        )
    store, _ = _send(routing, route, "resume")
    if store.holder() is not None:
        _report(settle_route(routing, route, store, aws, metrics_url, 30))
        return
    sys.exit(_run(_controller(routing, route, aws, metrics_url), route))


def _numbers(verdict: dict[str, Any]) -> str:
    """`` +0.2 points [-0.1, +0.5]`` (a difference is signed), `` 14.7 ms`` (a value)."""
    estimate, unit = verdict.get("estimate"), verdict.get("unit") or ""
    if not isinstance(estimate, int | float):
        return ""
    form = "+.3g" if unit == "points" else ".3g"
    text = f" {estimate:{form}} {unit}".rstrip()
    interval = verdict.get("interval")
    if interval and all(isinstance(v, int | float) for v in interval):
        text += f" [{interval[0]:{form}}, {interval[1]:{form}}]"
    return text


def _line(view: dict[str, Any]) -> list[str]:
    configured = view["configured"]
    observed = view["observed"]
    canary, baseline = view["to"], view["from"]
    lines = [
        f"{view['route']}: {view['state']} · step {view['step']}/{view['steps']} "
        f"({' → '.join(f'{w:g}' for w in view['weights'])} %) · {baseline} → {canary}",
        f"  weight    configured {canary} {configured[canary]:g} %"
        + (f" · observed {observed[canary]:g} %" if observed else "")
        + (f" · AWS {view['actual']:g} %" if view["actual"] is not None else ""),
    ]
    sample = view["sample"]
    if sample["required"] is not None:
        lines.append(
            f"  sample    canary {sample['canary']} of {sample['required']}"
            f" · baseline {sample['baseline']}"
        )
    for verdict in [*view["verdicts"], *view["gates"]]:
        lines.append(
            f"  {verdict['metric']:<9} {verdict['result']:<13}{_numbers(verdict)}"
            f" — {verdict['reason']}"
        )
    if view["reason"]:
        lines.append(f"  decision  {view['reason']}")
    if view["paused_reason"] and view["state"] == "paused":
        lines.append(f"  paused    {view['paused_reason']}")
    lines.append(
        "  controller "
        + (f"running (pid {view['controller']})" if view["controller"] else "not running")
    )
    return lines


@rollout.command()
@click.argument("route", required=False)
@routing_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", is_flag=True, help="Print again every 2 s until Ctrl-C.")
def status(route: str | None, routing: Path, as_json: bool, watch: bool) -> None:
    """Where ROUTE's rollout is (default: every route's): state, step, configured and
    observed weights, each verdict with its numbers."""
    directory = state_dir(routing)
    while True:
        table = load_table(routing)
        names = (
            [route]
            if route
            else sorted(
                p.stem
                for p in directory.glob("*.json")
                if "@" not in p.stem  # canaries: their own
            )
        )
        views = []
        for name in names:
            store = RolloutStore(directory, name)
            state = store.load()
            if state is None:
                if route:
                    raise ConfigError(f"route {route!r} has no rollout")
                continue
            plan = next((r.rollout for r in table.all_routes if r.name == name), None)
            views.append(describe(state, plan, store.holder()))
        if as_json:
            click.echo(json.dumps(views[0] if route else views, indent=2, default=str))
        else:
            if watch:
                click.echo("\x1b[2J\x1b[H", nl=False)
            for view in views:
                click.echo("\n".join(_line(view)))
            if not views:
                click.echo("no rollouts")
        if not watch:
            return
        time.sleep(2)


__all__ = ["rollout", "settle", "settle_route"]
