"""The route table a running proxy serves, swapped atomically when routing.yaml changes.

A request reads ``LiveTable.current`` once, at its start, and keeps that snapshot to
its end: in-flight requests finish on the table they started with while new ones take
the new table. A file that fails validation is refused with its problems logged, and the
table in service stays as it was. Every process of ``serve --workers N`` watches the
file itself, so a change — made by ``strangler shift``, the admin API or an editor —
reaches all of them within one poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facade.exceptions import RoutingFileError
from facade.proxy.choice import Chooser
from facade.routing.loader import load_table
from facade.routing.matcher import Matcher
from facade.routing.model import RoutingTable

log = logging.getLogger("strangler.facade")


@dataclass(frozen=True)
class Snapshot:
    table: RoutingTable
    matcher: Matcher
    chooser: Chooser
    generation: int
    loaded_at: float


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass(frozen=True)
class Loaded:
    """A table and the signature (mtime, size, inode) its file had before it was read."""

    table: RoutingTable
    signature: tuple[int, int, int] | None


def preload(path: str | Path) -> Loaded:
    """Load a routing file for a proxy to serve; invalid at start-up is fatal."""
    signature = _signature(Path(path))
    return Loaded(load_table(path), signature)


class LiveTable:
    def __init__(self, path: str | Path, secret: bytes, loaded: Loaded | None = None) -> None:
        """Serve the table ``preload`` read from ``path``; any later change of the file —
        even one made before this process started watching — is applied if valid."""
        self.path = Path(path)
        self.secret = secret
        loaded = loaded or preload(self.path)
        self._signature = loaded.signature
        table = loaded.table
        self.current = Snapshot(table, Matcher(table), Chooser(table, secret), 1, time.time())
        self.last_error: str | None = None
        self.listeners: list[Callable[[Snapshot, str], None]] = []

    def swap(self, table: RoutingTable, signature: tuple[int, int, int] | None = None) -> Snapshot:
        """Serve ``table`` from now on. ``signature`` is the file's state when the table
        was read (taken before reading: an edit made since then still counts as a change);
        by default, the file's state now (for a table this process just wrote itself)."""
        snapshot = Snapshot(
            table,
            Matcher(table),
            Chooser(table, self.secret),
            self.current.generation + 1,
            time.time(),
        )
        self.current = snapshot
        self.last_error = None
        self._signature = signature if signature is not None else _signature(self.path)
        for listener in self.listeners:
            listener(snapshot, "ok")
        return snapshot

    def reload(self) -> bool:
        """Load the file again; True if the new table is now live."""
        signature = _signature(self.path)
        self._signature = signature  # a refused file is not retried until it changes again
        try:
            table = load_table(self.path)
        except RoutingFileError as exc:
            self.last_error = str(exc)
            log.error("routing reload refused, the previous table stays live: %s", exc)
            for listener in self.listeners:
                listener(self.current, "invalid")
            return False
        snapshot = self.swap(table, signature)
        log.info("routing table generation %d is live (pid %d)", snapshot.generation, os.getpid())
        return True

    def changed(self) -> bool:
        return _signature(self.path) != self._signature

    async def watch(self, interval: float = 0.2) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                self.reload()
