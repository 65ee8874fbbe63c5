"""Off the request path: compare pairs, redact, write them to the store.

One thread per facade worker takes finished pairs from a bounded queue (a full queue
drops the pair and counts it: ``dropped:backlog``), compares them, redacts what is
kept, and writes them in batches, one transaction per batch and store file. Counts of
copies not compared (dropped, failed) are added to the same batches. The outcome of
each pair goes back to the event loop's thread for the Prometheus counters.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facade.routing.model import Shadow
from facade.shadow.compare import Answer, compare, endpoint
from facade.shadow.redact import Redactor
from facade.shadow.store import NOISE, SHADOW, Comparison, Example, Writer

log = logging.getLogger("strangler.shadow")

BACKLOG = 2000  # pairs waiting to be compared; more are dropped
BATCH = 200  # pairs per transaction at most


@dataclass(frozen=True, slots=True)
class Pair:
    """A request, the primary's answer, and the answers of its copies."""

    route: str
    store: Path
    rules: Shadow
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    primary: Answer
    shadow: Answer | None  # None: the shadow copy failed (counted already)
    noise: Answer | None  # the primary's second answer, if this pair was sampled


Outcome = Callable[[str, str], None]  # (route, result): matched, differing, noise


class Recorder:
    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome
        self._queue: queue.Queue[Pair | None] = queue.Queue(BACKLOG)
        self._lock = threading.Lock()
        self._counts: dict[Path, dict[tuple[str, str], int]] = {}
        self._keep: dict[Path, dict[str, int]] = {}
        self._writers: dict[Path, Writer] = {}
        self._thread = threading.Thread(target=self._run, name="shadow-recorder", daemon=True)
        self._thread.start()

    def submit(self, pair: Pair) -> bool:
        try:
            self._queue.put_nowait(pair)
        except queue.Full:
            self.count(pair.store, pair.route, "dropped:backlog")
            return False
        return True

    def count(self, store: Path, route: str, name: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(store, {})
            counts[route, name] = counts.get((route, name), 0) + 1
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wake the thread: counts alone are worth a write

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._stop = True
        self._thread.join(timeout)
        for writer in self._writers.values():
            writer.close()

    _stop = False

    # -- the recorder's thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is not None:
                    batch.append(more)
            try:
                self._write(batch)
            except Exception:
                log.exception("the shadow store could not be written; %d pairs lost", len(batch))
            if self._stop and self._queue.empty():
                return

    def _write(self, batch: list[Pair]) -> None:
        comparisons: dict[Path, list[Comparison]] = {}
        for pair in batch:
            self._keep.setdefault(pair.store, {})[pair.route] = pair.rules.keep
            comparisons.setdefault(pair.store, []).extend(self._compare(pair))
        with self._lock:
            counts, self._counts = self._counts, {}
        for store in comparisons.keys() | counts.keys():
            writer = self._writers.get(store)
            if writer is None:
                writer = self._writers[store] = Writer(store, self._keep.setdefault(store, {}))
            writer.write(comparisons.get(store, []), counts.get(store, {}))

    def _compare(self, pair: Pair) -> list[Comparison]:
        redactor = Redactor(pair.rules.redact)
        point = redactor.text(endpoint(pair.method, pair.path))
        found: list[Comparison] = []
        if pair.noise is not None:
            noise = compare(pair.primary, pair.noise, pair.rules)
            fields = tuple(redactor.text(d.field) for d in noise)
            found.append(Comparison(pair.route, point, NOISE, fields))
            self._outcome(pair.route, "noise")
        if pair.shadow is not None:
            differences = compare(pair.primary, pair.shadow, pair.rules)
            line = f"{pair.method} {redactor.text(pair.path)}"
            query = redactor.query(pair.query)
            if query:
                line += f"?{query}"
            headers = redactor.headers(pair.headers)
            examples = tuple(
                Example(
                    redactor.text(d.field),
                    redactor.text(d.where),
                    line,
                    headers,
                    redactor.fragment(d.where, d.primary),
                    redactor.fragment(d.where, d.other),
                )
                for d in differences
            )
            fields = tuple(redactor.text(d.field) for d in differences)
            found.append(Comparison(pair.route, point, SHADOW, fields, examples))
            self._outcome(pair.route, "differing" if differences else "matched")
        return found


__all__ = ["Pair", "Recorder"]
