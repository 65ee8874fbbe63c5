"""The sync's message: one change of one entity, as every side writes and reads it.

A message body is compact JSON::

    {"event": "…", "stream": "catalog", "aggregate": "catalog.Product", "id": "42",
     "kind": "upsert", "data": {…}, "version": 1234, "origin": "monolith", "at": "…"}

``data`` is the entity's full state (``null`` for a deletion), so a consumer needs
nothing else and the newest version wins. ``version`` orders the changes of one
entity: on a one-way stream the publishing side's outbox sequence; for a two-way
entity its Lamport version, and the message then also carries ``rank`` and ``base``
(``facade.sync.conflict``).

On SQS FIFO the message group is the entity (its changes stay in order) and the
deduplication id is the SHA-256 of the body: the same change sent twice (a relay that
died between sending and recording) is dropped by SQS within its 5-minute window, and
two different states of an entity can never share an id.

This module is part of the toolkit's runtime (standard library only): the monolith's
relay and inbox, the catalog service and the orders function all build and parse
messages here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facade.sync.conflict import Stamp

__all__ = [
    "BATCH",
    "MAX_MESSAGE_BYTES",
    "Change",
    "Malformed",
    "TooLarge",
    "batches",
    "decode",
]

BATCH = 10  # SendMessageBatch / ReceiveMessage / DeleteMessageBatch at most
# SQS's message size limit (and a SendMessageBatch's total) unless a stream says more
MAX_MESSAGE_BYTES = 262_144
KINDS = ("upsert", "delete")


class Malformed(ValueError):
    """A body that is not a sync message: it can never apply."""


class TooLarge(ValueError):
    """A change whose message is larger than the stream's queue accepts."""


@dataclass(frozen=True)
class Change:
    stream: str
    aggregate: str  # the entity's type, e.g. "orders.Order"
    id: str
    kind: str  # "upsert" or "delete"
    data: dict[str, Any] | None
    version: int
    origin: str
    event: str  # unique per change
    at: str | None = None
    rank: int | None = None  # two-way entities only
    base: Stamp | None = None  # two-way entities only
    body: str = field(default="", compare=False)  # as read from (or written to) the wire

    @property
    def two_way(self) -> bool:
        return self.rank is not None

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.rank or 0, self.version, self.origin)

    @property
    def entity(self) -> str:
        return f"{self.aggregate}:{self.id}"

    @property
    def group_id(self) -> str:
        """The SQS FIFO message group: one per entity. SQS takes up to 128 ASCII letters,
        digits and punctuation; an entity that is not written so (a space, a non-ASCII
        letter, a long string key) is its label and a digest of its id."""
        if _GROUP_ID.fullmatch(self.entity):
            return self.entity
        digest = hashlib.sha256(self.id.encode()).hexdigest()
        return f"{self.aggregate[:60]}#{digest}"

    def encode(self) -> str:
        payload: dict[str, Any] = {
            "event": self.event,
            "stream": self.stream,
            "aggregate": self.aggregate,
            "id": self.id,
            "kind": self.kind,
            "data": self.data,
            "version": self.version,
            "origin": self.origin,
            "at": self.at,
        }
        if self.rank is not None:
            payload["rank"] = self.rank
            payload["base"] = self.base.as_dict() if self.base else None
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
        # SQS refuses U+FFFE and U+FFFF in a body (JSON's own escapes cover the controls)
        return text.translate(_NOT_IN_SQS)

    def entry(self, entry_id: str, body: str | None = None) -> dict[str, str]:
        """A ``SendMessageBatch`` entry (``body``: the encoded change, if at hand)."""
        text = body if body is not None else self.encode()
        return {
            "Id": entry_id,
            "MessageBody": text,
            "MessageGroupId": self.group_id,
            "MessageDeduplicationId": deduplication_id(text),
        }


_GROUP_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
_NOT_IN_SQS = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


def deduplication_id(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def size(body: str) -> int:
    """What SQS counts against its limit: the body's UTF-8 bytes."""
    return len(body.encode())


def decode(body: str | bytes | Mapping[str, Any]) -> Change:
    """A change from a message body; raises ``Malformed``."""
    text = body.decode() if isinstance(body, bytes) else body
    try:
        raw = json.loads(text) if isinstance(text, str) else dict(text)
    except ValueError as exc:
        raise Malformed(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise Malformed(f"a message is a JSON object, got {type(raw).__name__}")
    try:
        kind = str(raw["kind"])
        data = raw.get("data")
        if kind not in KINDS:
            raise Malformed(f"kind {kind!r}: one of {', '.join(KINDS)}")
        if kind == "upsert" and not isinstance(data, dict):
            raise Malformed(f"an upsert carries the entity's state, got {type(data).__name__}")
        rank = raw.get("rank")
        return Change(
            stream=str(raw.get("stream") or ""),
            aggregate=str(raw["aggregate"]),
            id=str(raw["id"]),
            kind=kind,
            data=data if kind == "upsert" else None,
            version=int(raw["version"]),
            origin=str(raw.get("origin") or ""),
            event=str(raw.get("event") or ""),
            at=None if raw.get("at") is None else str(raw["at"]),
            rank=None if rank is None else int(rank),
            base=Stamp.from_dict(raw.get("base")),
            body=text if isinstance(text, str) else "",
        )
    except Malformed:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"malformed message: {exc!r}") from exc


def batches(bodies: list[str], limit: int = MAX_MESSAGE_BYTES) -> tuple[list[list[int]], list[int]]:
    """Split encoded messages into ``SendMessageBatch`` calls: at most ``BATCH`` entries
    and ``limit`` bytes each, in order. Returns (batches of indexes, indexes of messages
    that alone exceed ``limit``)."""
    groups: list[list[int]] = []
    oversize: list[int] = []
    current: list[int] = []
    total = 0
    for index, body in enumerate(bodies):
        length = size(body)
        if length > limit:
            oversize.append(index)
            continue
        if current and (len(current) == BATCH or total + length > limit):
            groups.append(current)
            current, total = [], 0
        current.append(index)
        total += length
    if current:
        groups.append(current)
    return groups, oversize
