"""Off the request path: compare pairs, redact, write them to the store — in a process
of its own.

Comparing JSON and writing SQLite take the GIL, and a thread holding it makes the
event loop wait up to the interpreter's switch interval (5 ms) after each of its
socket writes: the primary's latency would pay for the comparison. So the facade
worker only batches finished pairs (every ``FLUSH`` seconds or ``BATCH`` pairs),
pickles them and writes them to a pipe without ever blocking; a recorder process
(started with the first copy, spawned, one per facade worker) compares, redacts,
stores, and answers with the outcomes for the Prometheus counters. It runs in Linux's
idle scheduling class (nice 10 elsewhere): on a busy machine, comparisons wait, answers
do not. If the recorder falls ``BACKLOG`` bytes behind, pairs are dropped and counted
(``dropped:backlog``). Counts of copies not compared (dropped, failed) travel in the same batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import struct
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from facade.routing.model import Shadow
from facade.shadow.compare import Answer, compare, endpoint
from facade.shadow.redact import Redactor
from facade.shadow.store import NOISE, SHADOW, Comparison, Example, Writer

log = logging.getLogger("strangler.shadow")

FLUSH = 0.02  # seconds a finished pair may wait for its batch
BATCH = 200  # items per batch at most
NICE = 10  # the recorder's lower priority where there is no idle scheduling class
BACKLOG = 16 * 1024 * 1024  # bytes written ahead of the recorder; more: pairs dropped
_FRAME = struct.Struct("!i")  # multiprocessing.Connection's framing (what recv() reads)


class Pair(NamedTuple):
    """A request, the primary's answer, and the answers of its copies (tuples pickle
    several times faster than dataclasses: they cross to the recorder by the thousand)."""

    route: str
    store: Path
    rules: Shadow
    method: str
    path: str
    query: str
    headers: tuple[tuple[bytes, bytes], ...]
    primary: Answer
    shadow: Answer | None  # None: the shadow copy failed (counted already)
    noise: Answer | None  # the primary's second answer, if this pair was sampled


class Count(NamedTuple):
    """A copy not compared: ``dropped:<reason>`` or ``error:<kind>``."""

    route: str
    store: Path
    name: str


Outcome = Callable[[str, str, int], None]  # (route, result, how many)


class Recorder:
    """The facade worker's side: batches, a pipe each way, the recorder process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outcome: Outcome) -> None:
        self.loop = loop
        self._outcome = outcome
        context = multiprocessing.get_context("spawn")  # not fork: the loop stays here
        their_in, our_out = context.Pipe(duplex=False)
        our_in, their_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_recorder_main, args=(their_in, their_out), name="strangler-shadow",
            daemon=True,
        )  # fmt: skip
        self.process.start()
        their_in.close()
        their_out.close()
        self._out, self._in = our_out, our_in
        os.set_blocking(our_out.fileno(), False)
        os.set_blocking(our_in.fileno(), False)
        loop.add_reader(our_in.fileno(), self._read)
        self._items: list[Pair | Count] = []
        self._flusher: asyncio.TimerHandle | None = None
        self._unsent = bytearray()
        self._writing = False
        self._received = bytearray()
        self._behind: dict[tuple[str, Path], int] = {}  # pairs dropped: counted when caught up
        self._closed = False

    def submit(self, item: Pair | Count) -> None:
        if self._closed:
            return
        if isinstance(item, Pair) and len(self._unsent) > BACKLOG:
            key = (item.route, item.store)
            self._behind[key] = self._behind.get(key, 0) + 1
            self._outcome(item.route, "dropped", 1)
            return
        self._items.append(item)
        if len(self._items) >= BATCH:
            self._flush()
        elif self._flusher is None:
            self._flusher = self.loop.call_later(FLUSH, self._flush)

    def _flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if len(self._unsent) <= BACKLOG and self._behind:
            for (route, store), count in self._behind.items():
                self._items += [Count(route, store, "dropped:backlog")] * count
            self._behind = {}
        if not self._items:
            return
        items, self._items = self._items, []
        payload = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
        self._unsent += _FRAME.pack(len(payload)) + payload
        self._write()

    def _write(self) -> None:
        fd = self._out.fileno()
        try:
            written = os.write(fd, self._unsent)
        except BlockingIOError:
            written = 0
        except OSError as exc:  # the recorder died: nothing more is recorded
            log.error("the shadow recorder is gone: %r", exc)
            self._unsent.clear()
            return
        del self._unsent[:written]
        if self._unsent and not self._writing:
            self._writing = True
            self.loop.add_writer(fd, self._drained)
        elif not self._unsent and self._writing:
            self._writing = False
            self.loop.remove_writer(fd)

    def _drained(self) -> None:
        self._write()

    def _read(self) -> None:
        try:
            data = os.read(self._in.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            self.loop.remove_reader(self._in.fileno())
            return
        self._received += data
        while len(self._received) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self._received)
            if len(self._received) < _FRAME.size + size:
                return
            outcomes = pickle.loads(self._received[_FRAME.size : _FRAME.size + size])  # noqa: S301 - our own child
            del self._received[: _FRAME.size + size]
            for (route, result), count in outcomes.items():
                self._outcome(route, result, count)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is batched, let the recorder write it, and stop it."""
        if self._closed:
            return
        self._closed = True
        self._flush()
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._in.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self._out.fileno())
        end = pickle.dumps(None)
        self._unsent += _FRAME.pack(len(end)) + end
        with contextlib.suppress(OSError):
            os.set_blocking(self._out.fileno(), True)
            os.write(self._out.fileno(), self._unsent)  # at exit: waiting is allowed
        self._out.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
        self._in.close()


# -- the recorder process ----------------------------------------------------------------


def _background() -> None:
    """The recorder's CPU share: Linux's idle class where there is one (it runs only on a
    CPU nothing else wants, and a proxy worker waking up takes the CPU back at once, where
    nice 10 still takes turns with it), else nice 10."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))
            return
    with contextlib.suppress(OSError):
        os.nice(NICE)


def _recorder_main(
    incoming: multiprocessing.connection.Connection,
    outgoing: multiprocessing.connection.Connection,
) -> None:
    writers: dict[Path, Writer] = {}
    keep: dict[Path, dict[str, int]] = {}
    # A Ctrl-C or SIGTERM for the facade's process group must not cut the recorder short:
    # it ends when the worker says so, or when the worker's end of the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _background()
    try:
        while True:
            try:
                batch = incoming.recv()
            except EOFError:
                return
            if batch is None:
                return
            outcomes: dict[tuple[str, str], int] = {}
            comparisons: dict[Path, list[Comparison]] = {}
            counts: dict[Path, dict[tuple[str, str], int]] = {}
            for item in batch:
                if isinstance(item, Count):
                    per_store = counts.setdefault(item.store, {})
                    per_store[item.route, item.name] = per_store.get((item.route, item.name), 0) + 1
                    continue
                keep.setdefault(item.store, {})[item.route] = item.rules.keep
                found = comparisons.setdefault(item.store, [])
                for comparison, result in _compare(item):
                    found.append(comparison)
                    outcomes[item.route, result] = outcomes.get((item.route, result), 0) + 1
            for store in comparisons.keys() | counts.keys():
                writer = writers.get(store)
                if writer is None:
                    writer = writers[store] = Writer(store, keep.setdefault(store, {}))
                try:
                    writer.write(comparisons.get(store, []), counts.get(store, {}))
                except Exception:
                    log.exception("the shadow store %s could not be written", store)
            with contextlib.suppress(OSError):
                outgoing.send(outcomes)
    finally:
        for writer in writers.values():
            writer.close()


@functools.lru_cache(maxsize=64)
def _redactor(names: tuple[str, ...]) -> Redactor:
    return Redactor(names)


@functools.lru_cache(maxsize=4096)
def _endpoint(redactor: Redactor, method: str, path: str) -> str:
    return redactor.text(endpoint(method, path))


def _compare(pair: Pair) -> list[tuple[Comparison, str]]:
    redactor = _redactor(pair.rules.redact)
    point = _endpoint(redactor, pair.method, pair.path)
    found: list[tuple[Comparison, str]] = []
    if pair.noise is not None:
        noise = compare(pair.primary, pair.noise, pair.rules)
        fields = tuple(redactor.text(d.field) for d in noise)
        found.append((Comparison(pair.route, point, NOISE, fields), "noise"))
    if pair.shadow is not None:
        differences = compare(pair.primary, pair.shadow, pair.rules)
        if not differences:
            found.append((Comparison(pair.route, point, SHADOW, ()), "matched"))
            return found
        line = f"{pair.method} {redactor.text(pair.path)}"
        query = redactor.query(pair.query)
        if query:
            line += f"?{query}"
        headers = redactor.headers(
            (n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in pair.headers
        )
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
        found.append((Comparison(pair.route, point, SHADOW, fields, examples), "differing"))
    return found


__all__ = ["Count", "Pair", "Recorder"]
