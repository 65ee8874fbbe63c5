"""``strangler sync …``: the data sync's queues, dead letters, verification and status.

Every command reads the streams from routing.yaml's ``sync:`` block and talks to the
local stand-ins named by its ``local.aws`` block — or, with ``--aws``, to AWS through
boto3's standard configuration (profile, region, credentials).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError

from facade.aws_local import CREDENTIALS, stand_ins
from facade.exceptions import CheckFailed, ConfigError
from facade.options import routing_option as _routing
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable, SyncStream
from facade.sync import commands, dlq, metrics, sqs
from facade.sync import verify as checking
from facade.sync.queues import create_queues

_aws = click.option(
    "--aws", "use_aws", is_flag=True, help="Talk to AWS instead of the local stand-ins."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def sqs_client(table: RoutingTable, use_aws: bool) -> Any:
    if use_aws:
        try:
            return sqs.client()
        except sqs.ConfigurationProblem as exc:
            raise ConfigError(str(exc)) from exc
    aws = stand_ins(table)
    return sqs.client(aws.sqs or aws.endpoint, **CREDENTIALS)


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
    """The messages in STREAM's dead-letter queue, and the changes its publishing side
    set aside (too large for the queue, or refused by SQS for good)."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    item = _stream(table, stream)
    _, dead = _urls(client, item)
    letters = [letter.summary() for letter in dlq.list_letters(client, dead)]
    parked = set_aside(table, routing, item)
    if as_json:
        click.echo(json.dumps({"dead_letters": letters, "set_aside": parked}, indent=2))
        return
    click.echo(f"{len(letters)} message(s) in {item.dlq}")
    for letter in letters:
        click.echo(
            f"{letter['message_id']}  {letter['entity'] or '(unreadable body)'}  "
            f"receives={letter['receives']}  sent={letter['sent']}"
        )
    if parked:
        click.echo(
            f"{len(parked)} change(s) set aside by {item.source} "
            f"(`strangler sync dlq replay {stream} --set-aside` once fixed)"
        )
        for entry in parked:
            click.echo(f"{entry['event']}  {entry['entity']}  {entry['error']}")


def set_aside(table: RoutingTable, routing: Path, stream: SyncStream) -> list[dict[str, Any]]:
    """What the publishing side set aside, when its status command can tell."""
    if "outbox_status" not in stream.commands:
        return []
    args = ["--parked", "--stream", stream.name, "--json"]
    _, answer = commands.run_json(table, routing, stream, "outbox_status", args)
    return list(answer.get("parked", []))


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
@click.option(
    "--set-aside", "set_aside_", is_flag=True, help="Publish the set-aside changes' entities again."
)
@_routing
@_aws
@_json
def dlq_replay(
    stream: str,
    ids: tuple[str, ...],
    everything: bool,
    set_aside_: bool,
    routing: Path,
    use_aws: bool,
    as_json: bool,
) -> None:
    """Send dead letters back to STREAM's queue, once their cause is fixed (or, with
    --set-aside, publish again the entities whose changes the publishing side set aside)."""
    table = load_table(routing)
    if set_aside_:
        result = commands.run(
            table, routing, _stream(table, stream), "emit", ["--parked", "--stream", stream],
            capture=True,
        )  # fmt: skip
        if result.returncode:
            raise CheckFailed(
                f"publishing again failed: {(result.stderr or result.stdout).strip()}"
            )
        click.echo(result.stdout.strip())
        return
    if bool(ids) == everything:
        raise click.UsageError("name the messages with --id, or give --all (or --set-aside)")
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


def _depths(client: Any, stream: SyncStream) -> dict[str, int]:
    queue, dead = _urls(client, stream)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    main = client.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    dlq_attrs = client.get_queue_attributes(QueueUrl=dead, AttributeNames=names[:1])["Attributes"]
    return {
        "queued": int(main.get(names[0], 0)),
        "in_flight": int(main.get(names[1], 0)),
        "dead_letters": int(dlq_attrs.get(names[0], 0)),
    }


def wait_until_delivered(
    table: RoutingTable, routing: Path, client: Any, stream: SyncStream, timeout: float
) -> bool:
    """Until nothing waits in the outbox (when its status command is configured) nor in
    the queue, in flight included (True), or the timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = 0
        if "outbox_status" in stream.commands:
            _, outbox = commands.run_json(table, routing, stream, "outbox_status", [])
            pending = int((outbox["streams"].get(stream.name) or {}).get("pending", 0))
        depths = _depths(client, stream)
        if not pending and not depths["queued"] and not depths["in_flight"]:
            return True
        time.sleep(0.2)
    return False


def gather(
    table: RoutingTable,
    routing: Path,
    client: Any,
    streams: list[SyncStream],
    *,
    timeout: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The status figures of each stream (its outbox's, when a command is configured)."""
    report: dict[str, dict[str, Any]] = {}
    for item in streams:
        figures: dict[str, Any] = dict(_depths(client, item))
        if "outbox_status" in item.commands:
            _, outbox = commands.run_json(
                table, routing, item, "outbox_status", [], timeout=timeout
            )
            figures.update(
                {f"outbox_{k}": v for k, v in (outbox["streams"].get(item.name) or {}).items()}
            )
        if "inbox_status" in item.commands:
            _, inbox = commands.run_json(table, routing, item, "inbox_status", [], timeout=timeout)
            figures.update((inbox.get("inbox") or {}).get(item.name) or {})
        report[item.name] = figures
    return report


@sync.command(name="queues")
@click.argument("stream", required=False)
@_routing
@_aws
def queues(stream: str | None, routing: Path, use_aws: bool) -> None:
    """Create the queue and dead-letter queue of STREAM (default: every stream), as
    routing.yaml describes them, where none exist yet; print their URLs. ``strangler
    up`` does this for the local stand-ins and ``render sam`` declares them for AWS;
    this is for an account whose queues are managed by hand."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    for found in [_stream(table, stream)] if stream else list(table.sync):
        try:
            url, dead = create_queues(client, found)
        except ClientError as exc:
            raise ConfigError(f"stream {found.name}: {sqs.explain(exc)}") from exc
        click.echo(f"{found.name}: {url} (dead letters: {dead})")


@sync.command(name="status")
@click.argument("stream", required=False)
@_routing
@_aws
@_json
@click.option("--prometheus", is_flag=True, help="Print Prometheus' text format instead.")
def status(
    stream: str | None, routing: Path, use_aws: bool, as_json: bool, prometheus: bool
) -> None:
    """Per stream: outbox backlog and its oldest age, queue depth, in flight, DLQ depth,
    and the conflicts its changes met on the applying side."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    streams = [_stream(table, stream)] if stream else list(table.sync)
    report = gather(table, routing, client, streams)
    if prometheus:
        click.echo(metrics.exposition(report), nl=False)
        return
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name, figures in report.items():
        outbox = (
            f"outbox {figures['outbox_pending']} pending "
            f"(oldest {figures['outbox_oldest_pending_age_s']:.1f}s), "
            if "outbox_pending" in figures
            else ""
        )
        conflicts = f", conflicts {figures['conflicts']}" if "conflicts" in figures else ""
        click.echo(
            f"{name}: {outbox}queue {figures['queued']}, in flight {figures['in_flight']}, "
            f"dead letters {figures['dead_letters']}{conflicts}"
        )


@sync.command(name="metrics")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9108, show_default=True)
@_routing
@_aws
def serve_metrics(host: str, port: int, routing: Path, use_aws: bool) -> None:
    """Serve the status figures of every stream as Prometheus metrics (GET /metrics)."""
    table = load_table(routing)
    client = sqs_client(table, use_aws)
    server = metrics.serve(host, port, lambda: gather(table, routing, client, list(table.sync)))
    click.echo(f"strangler sync metrics: http://{host}:{server.server_port}/metrics", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@sync.command(name="backfill")
@click.argument("stream")
@click.argument("entity")
@click.option("--restart", is_flag=True, help="Start over instead of resuming.")
@_routing
def backfill(stream: str, entity: str, restart: bool, routing: Path) -> None:
    """Stream ENTITY's existing rows into STREAM (resumable; the relay publishes them)."""
    table = load_table(routing)
    args = [entity, *(["--restart"] if restart else [])]
    result = commands.run(table, routing, _stream(table, stream), "backfill", args, capture=False)
    if result.returncode:
        raise CheckFailed(f"backfill of {entity} stopped (exit {result.returncode}); rerun resumes")


@sync.command(name="verify")
@click.argument("stream")
@click.argument("entity", required=False)
@click.option("--repair", is_flag=True, help="Re-emit drifted entities, wait, verify again.")
@click.option("--timeout", type=float, default=120, show_default=True, help="Seconds to drain.")
@_routing
@_aws
@_json
def verify(
    stream: str,
    entity: str | None,
    repair: bool,
    timeout: float,
    routing: Path,
    use_aws: bool,
    as_json: bool,
) -> None:
    """Compare both sides of STREAM entity by entity; exit 1 on drift."""
    table = load_table(routing)
    item = _stream(table, stream)

    def ask(side: str, args: list[str]) -> Any:
        key = f"{side}_digest"
        code, answer = commands.run_json(table, routing, item, key, args)
        if code:
            raise ConfigError(f"sync.{stream}.commands.{key} failed (exit {code}): {answer}")
        return answer

    report = checking.verify(ask, stream, entity)
    if report["drift"] and repair:
        for label, figures in report["entities"].items():
            if figures["drifted"]:
                emitted = commands.run(
                    table, routing, item, "emit",
                    [label, "--ids", ",".join(figures["drifted"])], capture=True,
                )  # fmt: skip
                if emitted.returncode:
                    raise CheckFailed(f"re-emitting {label} failed: {emitted.stderr.strip()}")
        client = sqs_client(table, use_aws)
        if not wait_until_delivered(table, routing, client, item, timeout):
            raise CheckFailed(f"stream {stream} did not deliver in {timeout:.0f}s")
        report = checking.verify(ask, stream, entity)
        report["repaired"] = True
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for label, figures in report["entities"].items():
            drifted = figures["drifted"]
            click.echo(
                f"{label}: {figures['source_rows']:,} rows on {item.source}, "
                f"{figures['target_rows']:,} on {item.target}, {len(drifted)} drifted"
                + (f": {', '.join(drifted[:20])}" if drifted else "")
            )
    if report["drift"]:
        raise CheckFailed(f"stream {stream}: {report['drift']} entities drifted")
