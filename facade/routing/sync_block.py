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
          outbox_status: "{python} -m monolith.manage sync_status --json"
          source_digest: "{python} -m monolith.manage sync_digest"          # sync verify:
          target_digest: "{python} -m extracted.catalog.manage sync_digest" # both halves
          inbox_status: ...         # the applying side's figures (conflicts), if it has any
        consumer: extracted.orders.sync:lambda_handler   # a Lambda target's SQS handler
        max_message_bytes: 262144   # SQS's limit per message and per batch (AWS: up to 1 MiB)
        two_way:                    # both sides change these entities (declared once a pair)
          reverse: orders-to-monolith           # the stream carrying the other direction
          lifecycle: {field: status, order: [placed, paid, cancelled, shipped]}
          ids: {split: 1000000000}  # new ids: `from` allocates below, `to` from here up

The same definitions create the local queues (``facade.sync.queues``) and, rendered,
the CloudFormation/SAM queues on AWS; SQS's own limits are checked here, since the
local stand-ins do not check them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ruamel.yaml.comments import CommentedMap

from facade.routing.checker import CALLABLE, NAME, Checker, show
from facade.routing.model import Backend, SyncStream
from facade.sync.conflict import Lifecycle, TwoWay

STREAM_KEYS = (
    "from", "to", "queue", "max_receives", "visibility_timeout", "retention", "commands",
    "consumer", "max_message_bytes", "two_way",
)  # fmt: skip
TWO_WAY_KEYS = ("reverse", "lifecycle", "ids")
COMMANDS = (
    "backfill", "emit", "outbox_status", "inbox_status", "source_digest", "target_digest",
)  # fmt: skip
# SQS: up to 80 characters of letters, digits, '-' and '_'; FIFO names end in .fifo. The
# dead-letter queue adds "-dlq", so the base leaves room for it.
QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,71}\.fifo$")
LIMITS = {
    "max_receives": (1, 1000),
    "visibility_timeout": (0, 43_200),
    "retention": (60, 1_209_600),
    "max_message_bytes": (1_024, 1_048_576),
}
ID_SPLIT = (2, 2**53)  # JSON numbers stay exact below 2^53


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
                max_message_bytes=numbers.get("max_message_bytes", 262_144),
            )
        )
    return _pair(check, node, streams)


def _at(
    check: Checker, node: CommentedMap, key: str, parent: CommentedMap, name: str, path: str,
    message: str,
) -> None:  # fmt: skip
    """Report at ``node[key]``, or at ``parent[name]`` when the key is missing."""
    if key in node:
        check.at(node, key, path, message)
    else:
        check.at(parent, name, path, message)


def _lifecycle(check: Checker, body: CommentedMap, path: str) -> Lifecycle | None:
    spec = check.mapping(body["lifecycle"], body, "lifecycle", path, ("field", "order"))
    if spec is None:
        return None
    field, order = spec.get("field"), spec.get("order")
    ok = True
    if not isinstance(field, str) or not field:
        message = f"{show(field)}: the name of the entity's stage field"
        _at(check, spec, "field", body, "lifecycle", f"{path}.field", message)
        ok = False
    stages = [str(v) for v in order] if isinstance(order, list) else []
    if (
        not isinstance(order, list)
        or len(stages) < 2
        or len(set(stages)) != len(stages)
        or not all(isinstance(v, str) and v for v in order)
    ):
        message = (
            f"{show(order)}: the stages in order, at least two distinct names, the stage a "
            "concurrent change should win with last (e.g. [placed, paid, cancelled, shipped])"
        )
        _at(check, spec, "order", body, "lifecycle", f"{path}.order", message)
        ok = False
    return Lifecycle(str(field), tuple(stages)) if ok else None


def _pair(check: Checker, node: CommentedMap, streams: list[SyncStream]) -> tuple[SyncStream, ...]:
    """Resolve ``two_way`` declarations: each names its reverse stream, and both streams
    of the pair carry the same ``TwoWay``."""
    by_name = {s.name: s for s in streams}
    pairs: dict[str, TwoWay] = {}
    for name, spec in node.items():
        if not isinstance(spec, CommentedMap) or "two_way" not in spec:
            continue
        path = f"sync.{name}.two_way"
        body = check.mapping(spec["two_way"], spec, "two_way", path, TWO_WAY_KEYS)
        if body is None:
            continue
        reverse = body.get("reverse")
        this, other = by_name.get(str(name)), by_name.get(str(reverse))
        if other is None or this is None or other is this:
            known = ", ".join(s for s in by_name if s != name) or "none"
            message = f"{show(reverse)}: the stream carrying the other direction; streams: {known}"
            _at(check, body, "reverse", spec, "two_way", f"{path}.reverse", message)
            continue
        if (other.source, other.target) != (this.target, this.source):
            check.at(
                body, "reverse", f"{path}.reverse",
                f"stream {other.name!r} goes from {other.source} to {other.target}; the reverse "
                f"of {this.name!r} goes from {this.target} to {this.source}",
            )  # fmt: skip
            continue
        if other.name in pairs or this.name in pairs:
            check.at(
                body, "reverse", f"{path}.reverse",
                f"{other.name!r} is already paired: declare two_way once per pair of streams",
            )  # fmt: skip
            continue
        lifecycle = _lifecycle(check, body, f"{path}.lifecycle") if "lifecycle" in body else None
        split: int | None = None
        if "ids" in body:
            ids = check.mapping(body["ids"], body, "ids", f"{path}.ids", ("split",))
            value = ids.get("split") if ids is not None else None
            low, high = ID_SPLIT
            if ids is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                message = (
                    f"{show(value)}: a whole number from {low} to {high}: new ids on "
                    f"{this.source} stay below it, on {this.target} they start at it"
                )
                _at(check, ids, "split", body, "ids", f"{path}.ids.split", message)
            elif ids is not None:
                split = value
        pair = TwoWay((this.name, other.name), (this.source, this.target), lifecycle, split)
        pairs[this.name] = pairs[other.name] = pair
    return tuple(replace(s, two_way=pairs.get(s.name)) for s in streams)
