"""Comparing both sides of a stream without either reading the other's storage.

Each side renders its entities in the shape the sync carries them (the message's
``data``) and reduces each to a digest of its **canonical form**, so the same data
digests alike across databases and languages: keys sorted, ``null`` and absent alike,
ISO 8601 moments in UTC with microseconds, decimal strings by value (``"10.50"`` is
``"10.5"``), lists as multisets (an order's lines in any order). The form goes by how a
value looks, not by its column's type (the sides may be written in other languages and
share no schema): two texts that read as the same number or the same moment — a SKU
``"10.10"`` and ``"10.1"`` — and two lists in another order compare equal.

``strangler sync verify`` asks each side's ``*_digest`` command (routing.yaml
``sync.<stream>.commands``) for its digests folded into buckets — per bucket the count
and the XOR of the digests, so memory stays bounded whatever the table size — and only
for the buckets that differ, the digests id by id, to name the drifted entities.

The command protocol (any language may implement it)::

    <digest command> --stream NAME                  → {"entities": ["orders.Order", …]}
    <digest command> --stream NAME --entity LABEL --buckets N [--only 3,17]

prints one JSON object: the entity types the side holds for the stream; or
``{"rows": R, "buckets": {"3": [count, "xor hex"], …}}``; or with ``--only``
``{"digests": {"<id>": "<hex>", …}}`` for the entities of those buckets.
This module is standard library only: the orders function's side uses it too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["bucket_of", "canonical", "digest", "fold", "report"]

BUCKETS = 1024
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")


def canonical(value: Any) -> Any:
    """The form two sides compare: see the module docstring."""
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list | tuple):
        items = [canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return _decimal(str(value))
    if isinstance(value, dt.datetime):
        return _moment(value)
    text = str(value)
    if _MOMENT.match(text):
        try:
            return _moment(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return text
    if _DECIMAL.match(text):
        return _decimal(text)
    return text


def _moment(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decimal(text: str) -> str:
    try:
        return format(Decimal(text).normalize(), "f")
    except InvalidOperation:
        return text


def digest(data: Mapping[str, Any] | None) -> str:
    """The digest of an entity's state (``None``: deleted, or not held)."""
    text = json.dumps(canonical(data or {}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def bucket_of(object_id: Any, buckets: int) -> int:
    return zlib.crc32(str(object_id).encode()) % buckets


def fold(digests: Iterable[tuple[Any, str]], buckets: int) -> tuple[int, dict[int, list[Any]]]:
    """(rows, bucket → [count, XOR of the digests as hex])."""
    folded: dict[int, list[int]] = {}
    rows = 0
    for object_id, text in digests:
        slot = folded.setdefault(bucket_of(object_id, buckets), [0, 0])
        slot[0] += 1
        slot[1] ^= int(text[:32], 16)
        rows += 1
    return rows, {b: [c, f"{x:032x}"] for b, (c, x) in folded.items()}


def report(
    states: Iterable[tuple[Any, Mapping[str, Any] | None]], buckets: int, only: set[int] | None
) -> dict[str, Any]:
    """What a side's digest command prints for one entity type."""
    pairs = (
        (object_id, digest(state))
        for object_id, state in states
        if only is None or bucket_of(object_id, buckets) in only
    )
    if only is not None:
        return {"digests": {str(i): d for i, d in pairs}}
    rows, folded = fold(pairs, buckets)
    return {"rows": rows, "buckets": {str(b): v for b, v in folded.items()}}


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a side's digest command."""
    parser.add_argument("--stream", required=True, help="the sync stream compared")
    parser.add_argument("--entity", default=None, help="the entity type, e.g. orders.Order")
    parser.add_argument("--buckets", type=int, default=BUCKETS)
    parser.add_argument("--only", default=None, help="comma-separated buckets: digests by id")


def only(text: str | None) -> set[int] | None:
    return None if text is None else {int(b) for b in text.split(",") if b.strip()}
