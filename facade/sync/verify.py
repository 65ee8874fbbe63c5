"""``strangler sync verify``: both sides of a stream compared through their digest
commands (``facade.sync.digest``), neither reading the other's storage.

For each entity type the stream carries, both sides fold their digests into buckets;
only the buckets that differ are asked for again, id by id, and the ids whose digests
differ — or that one side lacks — are the drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from facade.exceptions import ConfigError

# (side, args) → the side's JSON answer; side is "source" or "target"
Ask = Callable[[str, list[str]], Any]


def entities(ask: Ask, stream: str) -> list[str]:
    source = set(ask("source", ["--stream", stream]).get("entities", []))
    target = set(ask("target", ["--stream", stream]).get("entities", []))
    if source != target:
        raise ConfigError(
            f"stream {stream}: the sides carry different entities (from: {sorted(source)}, "
            f"to: {sorted(target)}); check STRANGLER_SYNC on both"
        )
    return sorted(source)


def compare(ask: Ask, stream: str, label: str, buckets: int = 1024) -> dict[str, Any]:
    args = ["--stream", stream, "--entity", label, "--buckets", str(buckets)]
    source, target = ask("source", args), ask("target", args)
    differing = sorted(
        b
        for b in set(source["buckets"]) | set(target["buckets"])
        if source["buckets"].get(b) != target["buckets"].get(b)
    )
    drifted: list[str] = []
    for start in range(0, len(differing), 256):  # keep each command line short
        chosen = ",".join(differing[start : start + 256])
        here = ask("source", [*args, "--only", chosen])["digests"]
        there = ask("target", [*args, "--only", chosen])["digests"]
        drifted += [i for i in set(here) | set(there) if here.get(i) != there.get(i)]
    return {
        "source_rows": int(source["rows"]),
        "target_rows": int(target["rows"]),
        "buckets": buckets,
        "buckets_read_twice": len(differing),
        "drifted": sorted(drifted, key=lambda i: (len(i), i)),
    }


def verify(ask: Ask, stream: str, only: str | None = None) -> dict[str, Any]:
    labels = entities(ask, stream)
    if only is not None:
        if only not in labels:
            raise ConfigError(f"stream {stream} carries {', '.join(labels)}, not {only!r}")
        labels = [only]
    report = {label: compare(ask, stream, label) for label in labels}
    return {"drift": sum(len(r["drifted"]) for r in report.values()), "entities": report}
