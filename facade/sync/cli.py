"""``strangler sync …``: the data sync's queues, dead letters, verification and status.

Every command reads the streams from routing.yaml's ``sync:`` block and talks to the
local stand-ins named by its ``local.aws`` block — or, with ``--aws``, to AWS through
boto3's standard configuration (profile, region, credentials).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import click

from facade.aws_local import CREDENTIALS
from facade.exceptions import CheckFailed, ConfigError
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable, SyncStream
from facade.sync import dlq

_routing = click.option(
    "--routing", "-f", "routing", type=click.Path(dir_okay=False, path_type=Path),
    default="routing.yaml", show_default=True, envvar="STRANGLER_ROUTING", help="The route table.",
)  # fmt: skip
_aws = click.option(
    "--aws", "use_aws", is_flag=True, help="Talk to AWS instead of the local stand-ins."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def sqs_client(table: RoutingTable, use_aws: bool) -> Any:
    if use_aws:
        return boto3.client("sqs")
    aws = table.local.aws
    if aws is None:
        raise ConfigError(f"{table.source}: no local.aws block; use --aws for AWS itself")
    return boto3.client("sqs", endpoint_url=aws.sqs or aws.endpoint, **CREDENTIALS)


def _stream(table: RoutingTable, name: str) -> SyncStream:
    try:
        return table.stream(name)
    except KeyError as exc:
        raise ConfigError(f"{table.source}: {exc.args[0]}") from exc


def _urls(client: Any, stream: SyncStream) -> tuple[str, str]:
    try:
        queue = client.get_queue_url(QueueName=stream.queue)["QueueUrl"]
        dead = client.get_queue_url(QueueName=stream.dlq)["QueueUrl"]
    except client.exceptions.QueueDoesNotExist as exc:
        raise ConfigError(
            f"stream {stream.name}: {exc}; is the stack (or its AWS side) up?"
        ) from exc
    return str(queue), str(dead)


@click.group()
def sync() -> None:
    """The data sync between the monolith and the extracted services."""


@sync.group(name="dlq")
def dlq_group() -> None:
    """A stream's dead-letter queue: list, show, replay."""


@dlq_group.command(name="list")
@click.argument("stream")
@_routing
@_aws
@_json
def dlq_list(stream: str, routing: Path, use_aws: bool, as_json: bool) -> None:
    """The messages in STREAM's dead-letter queue."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    _, dead = _urls(client, _stream(table, stream))
    letters = [letter.summary() for letter in dlq.list_letters(client, dead)]
    if as_json:
        click.echo(json.dumps(letters, indent=2))
        return
    click.echo(f"{len(letters)} message(s) in {_stream(table, stream).dlq}")
    for letter in letters:
        click.echo(
            f"{letter['message_id']}  {letter['entity'] or '(unreadable body)'}  "
            f"receives={letter['receives']}  sent={letter['sent']}"
        )


@dlq_group.command(name="show")
@click.argument("stream")
@click.argument("message_id")
@_routing
@_aws
def dlq_show(stream: str, message_id: str, routing: Path, use_aws: bool) -> None:
    """One dead letter, whole (JSON)."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    _, dead = _urls(client, _stream(table, stream))
    for letter in dlq.list_letters(client, dead):
        if letter.message_id == message_id:
            click.echo(json.dumps(letter.summary(), indent=2))
            return
    raise CheckFailed(f"no message {message_id} in {_stream(table, stream).dlq}")


@dlq_group.command(name="replay")
@click.argument("stream")
@click.option("--id", "ids", multiple=True, help="Replay only these messages (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@_routing
@_aws
@_json
def dlq_replay(
    stream: str, ids: tuple[str, ...], everything: bool, routing: Path, use_aws: bool, as_json: bool
) -> None:
    """Send dead letters back to STREAM's queue, once their cause is fixed."""
    if bool(ids) == everything:
        raise click.UsageError("name the messages with --id, or give --all")
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    queue, dead = _urls(client, _stream(table, stream))
    replayed = dlq.replay(client, dead, queue, set(ids) if ids else None)
    missing = sorted(set(ids) - set(replayed))
    if as_json:
        click.echo(json.dumps({"replayed": replayed, "not_found": missing}))
    else:
        click.echo(f"replayed {len(replayed)} message(s) to {_stream(table, stream).queue}")
        for message_id in missing:
            click.echo(f"not in the DLQ: {message_id}")
    if missing:
        raise CheckFailed(f"{len(missing)} message(s) not found in the DLQ")
