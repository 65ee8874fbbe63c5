"""``strangler render`` (``alb``, ``sam``, ``ecs``, ``apigw``, ``alarms``, ``rollout``,
``iam``), ``plan``, ``apply``, ``drift``, and the ``--apply`` of the route edits.

Every ``render`` writes to standard output unless ``--out FILE`` is given. ``plan``,
``apply`` and ``drift`` reach the listener named by ``--listener`` (or
``$STRANGLER_ALB_LISTENER``): on the local stand-in of routing.yaml's ``local.aws``
unless ``--aws`` is given, then on AWS with boto3's usual configuration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from facade.aws import alarms, alb, apigw, cloudformation, ecs, iam, live, sam, stepfunctions
from facade.aws.client import ElbClient
from facade.aws.executor import AwsExecutor, DisplayExecutor
from facade.aws.plan import Plan, make_plan
from facade.exceptions import CheckFailed, ConfigError
from facade.options import routing_option
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable


def _connect(table: RoutingTable, use_aws: bool) -> ElbClient:
    if use_aws:
        return ElbClient.connect()
    from facade.aws_local import CREDENTIALS, stand_ins

    return ElbClient.connect(stand_ins(table).endpoint, CREDENTIALS)


def aws_options(*, listener_required: bool = True) -> Callable[[Any], Any]:
    """--listener, --aws, --prefix, --vpc: where the listener is and how to name groups."""
    options = [
        click.option(
            "--listener",
            envvar="STRANGLER_ALB_LISTENER",
            required=listener_required,
            default=None,
            help="ARN of the ALB listener in front of the monolith.",
        ),
        click.option("--aws", "use_aws", is_flag=True, help="AWS itself, not the local stand-in."),
        click.option(
            "--prefix",
            default=alb.DEFAULT_PREFIX,
            show_default=True,
            help="Target group names are PREFIX-BACKEND.",
        ),
        click.option("--vpc", default=None, help="VPC for target groups that must be created."),
    ]

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def compute_plan(
    table: RoutingTable, listener: str, use_aws: bool, prefix: str, vpc: str | None
) -> tuple[ElbClient, Plan]:
    want = alb.desired(table, prefix)
    client = _connect(table, use_aws)
    return client, make_plan(want, live.read(client, listener, want), vpc)


def observed_shares(
    table: RoutingTable, route: str, listener: str, use_aws: bool, prefix: str
) -> dict[str, float]:
    """Read ``route``'s weights back from the listener: percent per backend, as AWS will
    apply them (``live.configured_shares``) — to compare with the file after an apply."""
    try:
        wanted = table.route(route)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc
    want = alb.desired(table, prefix)
    client = _connect(table, use_aws)
    return live.configured_shares(live.read(client, listener, want), want, wanted)


def weight_in_force(
    table: RoutingTable, route: str, backend: str, listener: str, use_aws: bool, prefix: str
) -> float:
    """``backend``'s percent of ``route`` as the listener applies it. A shadowed route's
    rule forwards everything to the facade, which splits it as the file says: when the
    rule does so, the file's weight is the one in force."""
    shares = observed_shares(table, route, listener, use_aws, prefix)
    found = table.route(route)
    if found.shadow is not None and shares.get(alb.FACADE) == 100.0:
        return found.share_of(backend) / 10
    return float(shares.get(backend, 0.0))


def push(table: RoutingTable, listener: str, use_aws: bool, prefix: str, vpc: str | None) -> Plan:
    """Make the listener what the table says; the plan that was carried out."""
    client, plan = compute_plan(table, listener, use_aws, prefix, vpc)
    AwsExecutor(client, lambda line: click.echo(f"applied: {line}")).execute(plan)
    return plan


@click.group()
def render() -> None:
    """Generate AWS configuration from routing.yaml (standard output, or --out FILE)."""


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)


def _render_options(func: Any) -> Any:
    for option in reversed(
        [
            routing_option,
            click.option("--format", "form", type=click.Choice(["yaml", "json"]), default="yaml"),
            click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None),
        ]
    ):
        func = option(func)
    return func


@render.command("alb")
@_render_options
@click.option("--prefix", default=alb.DEFAULT_PREFIX, show_default=True)
def render_alb(routing: Path, form: str, out: Path | None, prefix: str) -> None:
    """CloudFormation: target groups, Lambda permissions, the listener and its rules."""
    table = load_table(routing)
    document = cloudformation.template(alb.desired(table, prefix), routing.name)
    _emit(cloudformation.dump(document, form), out)


@render.command("sam")
@_render_options
@click.option(
    "--deployment-preference",
    type=click.Choice(sam.DEPLOYMENT_TYPES),
    default=None,
    help="Let CodeDeploy shift each function's alias to a new version this way.",
)
def render_sam(
    routing: Path, form: str, out: Path | None, deployment_preference: str | None
) -> None:
    """SAM: the Lambda backends (alias, SQS event sources with partial batch failures)
    and every sync stream's FIFO queue and dead-letter queue."""
    document = sam.template(load_table(routing), routing.name, deployment_preference)
    _emit(cloudformation.dump(document, form), out)


@render.command("ecs")
@_render_options
def render_ecs(routing: Path, form: str, out: Path | None) -> None:
    """CloudFormation: a Fargate task definition and service per ECS backend."""
    _emit(cloudformation.dump(ecs.template(load_table(routing), routing.name), form), out)


@render.command("apigw")
@_render_options
@click.option("--cloudformation", "as_template", is_flag=True, help="The template that deploys it.")
@click.option("--listener", default="${ListenerArn}", help="ALB listener ARN for the OpenAPI.")
@click.option("--vpc-link", default="${VpcLinkId}", help="VPC link id for the OpenAPI.")
@click.option("--region", default="${AWS::Region}", help="For the Lambda ARNs of the OpenAPI.")
@click.option("--account", default="${AWS::AccountId}", help="For the Lambda ARNs of the OpenAPI.")
def render_apigw(
    routing: Path,
    form: str,
    out: Path | None,
    as_template: bool,
    listener: str,
    vpc_link: str,
    region: str,
    account: str,
) -> None:
    """API Gateway HTTP API: OpenAPI 3 with x-amazon-apigateway-integration (or, with
    --cloudformation, the template deploying it): $default through a VPC link to the ALB,
    routes fully on a Lambda invoked directly, JWT authorizer on auth routes."""
    table = load_table(routing)
    if as_template:
        document = apigw.template(table, routing.name)
    else:
        document = apigw.openapi(
            table, listener=listener, vpc_link=vpc_link, region=region, account=account
        )
    _emit(cloudformation.dump(document, form), out)


@render.command("alarms")
@_render_options
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 100, min_open=True),
    default=alarms.Thresholds.errors,
    show_default=True,
    help="Percent of a backend's requests that are 5xx or connection errors (routes "
    "without a rollout plan; those with one use its critical guard).",
)
@click.option(
    "--min-requests",
    type=click.IntRange(1),
    default=alarms.Thresholds.min_requests,
    show_default=True,
    help="Requests in a minute before its error rate counts.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, min_open=True),
    default=alarms.Thresholds.latency,
    show_default=True,
    help="Seconds the latency quantile may reach.",
)
@click.option(
    "--quantile",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=alarms.Thresholds.quantile,
    show_default=True,
)
def render_alarms(
    routing: Path,
    form: str,
    out: Path | None,
    error_rate: float,
    min_requests: int,
    latency: float,
    quantile: float,
) -> None:
    """CloudFormation: CloudWatch alarms per backend (error rate by metric math, latency
    quantile; target group or Lambda alias) and a composite alarm per route."""
    limits = alarms.Thresholds(error_rate, min_requests, latency, quantile)
    document = alarms.template(load_table(routing), routing.name, limits)
    _emit(cloudformation.dump(document, form), out)


@render.command("rollout")
@_render_options
@click.argument("route")
def render_rollout(routing: Path, form: str, out: Path | None, route: str) -> None:
    """CloudFormation: a Step Functions state machine that runs ROUTE's rollout plan on
    AWS, its task Lambda (the same analysis, packaged) and their least-privilege roles."""
    table = load_table(routing)
    document = stepfunctions.template(table, route, routing.name)
    plan = table.route(route).rollout
    if plan is not None and (plan.gates.sync or plan.gates.shadow or plan.pre_checks):
        click.echo(
            f"note: the AWS task runs neither the pre-checks nor the data gates of {route}'s "
            "plan: run them before starting the execution",
            err=True,
        )
    _emit(cloudformation.dump(document, form), out)


@render.command("iam")
@click.option("--listener", envvar="STRANGLER_ALB_LISTENER", required=True)
@click.option("--prefix", default=alb.DEFAULT_PREFIX, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def render_iam(listener: str, prefix: str, out: Path | None) -> None:
    """The least-privilege IAM policy for plan, apply and drift on LISTENER (JSON)."""
    _emit(json.dumps(iam.policy(listener, prefix), indent=2) + "\n", out)


@click.command()
@routing_option
@aws_options()
@click.option("--json", "as_json", is_flag=True)
def plan(
    routing: Path, listener: str, use_aws: bool, prefix: str, vpc: str | None, as_json: bool
) -> None:
    """Show the changes that would make the listener what routing.yaml says."""
    _, changes = compute_plan(load_table(routing), listener, use_aws, prefix, vpc)
    if as_json:
        click.echo(json.dumps(changes.as_dict(), indent=2))
    else:
        DisplayExecutor(click.echo).execute(changes)


@click.command()
@routing_option
@aws_options()
def apply(routing: Path, listener: str, use_aws: bool, prefix: str, vpc: str | None) -> None:
    """Carry out the plan; on a failure, undo what was done and exit 1."""
    push(load_table(routing), listener, use_aws, prefix, vpc)


@click.command()
@routing_option
@aws_options()
@click.option("--json", "as_json", is_flag=True)
def drift(
    routing: Path, listener: str, use_aws: bool, prefix: str, vpc: str | None, as_json: bool
) -> None:
    """Exit 1 when the live listener differs from routing.yaml, showing how."""
    _, changes = compute_plan(load_table(routing), listener, use_aws, prefix, vpc)
    if as_json:
        click.echo(json.dumps({"drift": bool(changes.steps), **changes.as_dict()}, indent=2))
    elif changes.steps:
        click.echo("live AWS differs from the routing file; `strangler apply` would:")
        DisplayExecutor(click.echo).execute(changes)
    else:
        click.echo("no drift")
    if changes.steps:
        raise CheckFailed(f"{len(changes.steps)} difference(s) between {routing} and the listener")


@click.command()
@click.argument("templates", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--rules-path", is_flag=True, help="Print the folder of the rules and exit.")
def lint(templates: tuple[str, ...], rules_path: bool) -> None:
    """cfn-lint TEMPLATES with strangler's rules for the ALB and metric filter limits
    cfn-lint leaves unchecked (exit 1 when anything is found). For your own cfn-lint runs:
    cfn-lint --append-rules "$(strangler lint --rules-path)" -t TEMPLATE"""
    from facade.aws import lint_rules

    folder = str(Path(lint_rules.__file__).parent)
    if rules_path:
        click.echo(folder)
        return
    if not templates:
        raise click.UsageError("name at least one template")
    result = subprocess.run(  # noqa: S603 - cfn-lint beside this interpreter, our arguments
        [str(Path(sys.executable).with_name("cfn-lint")), "--append-rules", folder,
         "-t", *templates],
        check=False,
    )  # fmt: skip
    if result.returncode:
        raise CheckFailed(f"cfn-lint found problems (exit {result.returncode})")


COMMANDS = (render, plan, apply, drift, lint)
