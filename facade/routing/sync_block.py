"""The ``sync:`` block of routing.yaml: the SQS queues the data sync runs over.

::

    sync:
      catalog:                      # a stream: one direction, one FIFO queue
        from: monolith              # whose outbox publishes
        to: catalog                 # whose consumer applies
        queue: shop-catalog.fifo
        max_receives: 5             # then the message moves to shop-catalog-dlq.fifo
        visibility_timeout: 30
        retention: 345600
        commands:                   # how `strangler sync` reaches each side
          backfill: "{python} -m monolith.manage outbox_backfill"
          emit: "{python} -m monolith.manage outbox_emit"
          verify: "{python} -m extracted.catalog.manage sync_verify --source ..."
          outbox_status: "{python} -m monolith.manage outbox_status --json"
          inbox_status: ...         # the applying side's figures (conflicts), if it has any
        consumer: extracted.orders.sync:lambda_handler   # a Lambda target's SQS handler

The same definitions create the local queues (``facade.sync.queues``) and, rendered,
the CloudFormation/SAM queues on AWS; SQS's own limits are checked here, since the
local stand-ins do not check them.
"""

from __future__ import annotations

import re

from ruamel.yaml.comments import CommentedMap

from facade.routing.checker import CALLABLE, NAME, Checker, show
from facade.routing.model import Backend, SyncStream

STREAM_KEYS = (
    "from", "to", "queue", "max_receives", "visibility_timeout", "retention", "commands",
    "consumer",
)  # fmt: skip
COMMANDS = ("backfill", "emit", "verify", "outbox_status", "inbox_status")
# SQS: up to 80 characters of letters, digits, '-' and '_'; FIFO names end in .fifo. The
# dead-letter queue adds "-dlq", so the base leaves room for it.
QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,71}\.fifo$")
LIMITS = {
    "max_receives": (1, 1000),
    "visibility_timeout": (0, 43_200),
    "retention": (60, 1_209_600),
}


def sync_streams(
    check: Checker, document: CommentedMap, backends: dict[str, Backend]
) -> tuple[SyncStream, ...]:
    if "sync" not in document:
        return ()
    node = document["sync"]
    if not isinstance(node, CommentedMap):
        check.at(document, "sync", "sync", f"must be a mapping of stream names, got {show(node)}")
        return ()
    streams: list[SyncStream] = []
    queues: dict[str, str] = {}
    for name, spec in node.items():
        path = f"sync.{name}"
        if not NAME.match(str(name)):
            check.at(
                node,
                name,
                path,
                "stream names are 1-32 lower-case letters, digits, '-'",
                value=False,
            )
        body = check.mapping(spec, node, name, path, STREAM_KEYS)
        if body is None:
            continue
        ends = {}
        for key in ("from", "to"):
            value = body.get(key)
            if value not in backends:
                allowed = ", ".join(backends) or "none"
                check.at(
                    body if key in body else node,
                    key if key in body else name,
                    f"{path}.{key}",
                    f"{show(value)} is not a backend; backends: {allowed}",
                )
            ends[key] = str(value)
        queue = str(body.get("queue", ""))
        if not QUEUE.match(queue):
            check.at(
                body if "queue" in body else node,
                "queue" if "queue" in body else name,
                f"{path}.queue",
                f"{queue!r}: a FIFO queue name, 1-71 letters, digits, '-' or '_' then "
                "'.fifo' (SQS allows 80 characters; the dead-letter queue adds '-dlq')",
            )
        elif queue in queues:
            check.at(
                body, "queue", f"{path}.queue", f"already the queue of stream {queues[queue]!r}"
            )
        queues[queue] = str(name)
        numbers: dict[str, int] = {}
        for key, (low, high) in LIMITS.items():
            if key not in body:
                continue
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                check.at(
                    body, key, f"{path}.{key}", f"{value!r}: a whole number from {low} to {high}"
                )
            else:
                numbers[key] = value
        commands: dict[str, str] = {}
        if "commands" in body:
            given = check.mapping(body["commands"], body, "commands", f"{path}.commands", COMMANDS)
            for key, command in (given or {}).items():
                if key in COMMANDS and isinstance(command, str) and command.strip():
                    commands[str(key)] = command
                elif key in COMMANDS:
                    check.at(given, key, f"{path}.commands.{key}", f"{show(command)}: a command")
        consumer = body.get("consumer")
        if consumer is not None and not CALLABLE.match(str(consumer)):
            check.at(body, "consumer", f"{path}.consumer", f"{show(consumer)}: module:function")
        streams.append(
            SyncStream(
                name=str(name),
                queue=queue,
                source=ends["from"],
                target=ends["to"],
                max_receives=numbers.get("max_receives", 5),
                visibility_timeout=numbers.get("visibility_timeout", 30),
                retention=numbers.get("retention", 345_600),
                commands=commands,
                consumer=str(consumer) if consumer is not None else None,
            )
        )
    return tuple(streams)
