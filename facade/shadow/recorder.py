"""Off the request path: the shadow process of a facade worker — it makes the copies,
compares, redacts and writes to the store.

A worker only batches what it hands over (what one turn of its event loop finished, at
most ``BATCH`` items: at low load each request goes at once, under load one write
carries many), pickles it and writes it to a pipe without ever blocking: for each copied request a
``copier.Job`` (the request and the primary's answer), and ``Count``s of copies it did
not hand over (dropped). The shadow process (started with the first copy, spawned, one
per facade worker) runs an event loop of its own: it sends the copies
(``facade.shadow.copier``), compares each pair once its copies' answers are in, redacts
and stores them, and answers with the outcomes for the Prometheus counters.

It runs in Linux's idle scheduling class (nice 10 elsewhere): it gets only the CPU the
workers leave, and a worker waking up takes the CPU back at once — comparing JSON,
writing SQLite and a second upstream exchange per copy would otherwise be paid for in
the primary's latency. On a machine the workers keep busy, the copies wait: if the
shadow process falls ``BACKLOG`` bytes behind, requests are not handed over but dropped
and counted (``dropped:backlog``), and a copy that waited past ``shadow.timeout`` for
its answer is an error like any late one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from facade.shadow.compare import compare, endpoint
from facade.shadow.copier import Copier, Job, Pair
from facade.shadow.redact import Redactor
from facade.shadow.store import NOISE, SHADOW, Comparison, Example, Writer

log = logging.getLogger("strangler.shadow")

FLUSH = 0.02  # seconds an outcome or a comparison may wait for its batch
BATCH = 200  # items per batch at most
NICE = 10  # the shadow process's lower priority where there is no idle scheduling class
BACKLOG = 16 * 1024 * 1024  # bytes written ahead of the shadow process; more: dropped
GRACE = 5.0  # seconds the copies in flight at the end have to finish
RESTART = 5.0  # seconds between a shadow process's death and its successor
_FRAME = struct.Struct("!i")  # multiprocessing.Connection's framing (what recv() reads)


class Count(NamedTuple):
    """A copy not made or not compared: ``dropped:<reason>`` or ``error:<kind>``."""

    route: str
    store: Path
    name: str


Outcome = Callable[[str, str, int], None]  # (route, result, how many)
Item = tuple[Any, ...]  # a ``copier.Job`` as a plain tuple (pickled faster), or a Count


class Recorder:
    """The facade worker's side: batches, a pipe each way, the shadow process — started
    again (at most every ``RESTART`` seconds) if it dies; what cannot be handed over
    meanwhile is counted ``dropped:backlog``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outcome: Outcome) -> None:
        self.loop = loop
        self._outcome = outcome
        self._items: list[Item] = []
        self._flusher: asyncio.Handle | None = None
        self._unsent = bytearray()
        self._writing = False
        self._received = bytearray()
        # dropped behind (route, store, name): stored once a shadow process takes them
        self._behind: dict[tuple[str, Path, str], int] = {}
        self._closed = False
        self._dead = False
        self._restart_at = 0.0
        self._start()
        atexit.register(self.close)  # before multiprocessing's exit joins the process

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: the loop stays here
        their_in, our_out = context.Pipe(duplex=False)
        our_in, their_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_recorder_main, args=(their_in, their_out), name="strangler-shadow",
            daemon=False,  # it starts Lambda environments of its own: a daemon may not
        )  # fmt: skip
        self.process.start()
        their_in.close()
        their_out.close()
        self._out, self._in = our_out, our_in
        os.set_blocking(our_out.fileno(), False)
        os.set_blocking(our_in.fileno(), False)
        self.loop.add_reader(our_in.fileno(), self._read)
        self._dead = False
        self._received.clear()

    def _died(self, why: object) -> None:
        """The shadow process is gone: said once, its pipes closed, a new one started at
        the next hand-over after ``RESTART`` seconds."""
        if self._dead:
            return
        self._dead = True
        log.error("the shadow process is gone (%s); a new one starts within %ds", why, RESTART)
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._in.fileno())
        if self._writing:
            self._writing = False
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self._out.fileno())
        self._unsent.clear()  # what it had not read yet is lost with it
        for pipe in (self._in, self._out):
            with contextlib.suppress(OSError):
                pipe.close()
        self.process.join(0)  # reaped, if it has exited
        self._restart_at = self.loop.time() + RESTART

    def submit(self, item: Item) -> None:
        """A job (``copier.Job``'s fields, as a plain tuple) or a ``Count``."""
        if self._closed:
            return
        if self._dead and self.loop.time() >= self._restart_at:
            with contextlib.suppress(Exception):
                self.process.kill()
            self._start()
        if self._dead or len(self._unsent) > BACKLOG:
            if type(item) is Count:  # counted in the series already
                key = (item.route, item.store, item.name)
            else:
                key = (item[0], item[1], "dropped:backlog")  # route, store
                self._outcome(item[0], "dropped", 1)
            self._behind[key] = self._behind.get(key, 0) + 1
            return
        self._items.append(item)
        if len(self._items) >= BATCH:
            self._flush()
        elif self._flusher is None:  # the copies' caps count what is in flight: go soon
            self._flusher = self.loop.call_soon(self._flush)

    def _flush(self, *, closing: bool = False) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._dead:
            return
        if self._behind and (closing or len(self._unsent) <= BACKLOG):
            for (route, store, name), count in self._behind.items():
                self._items += [Count(route, store, name)] * count
            self._behind = {}
        if not self._items:
            return
        items, self._items = self._items, []
        payload = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
        self._unsent += _FRAME.pack(len(payload)) + payload
        if not closing:
            self._write()

    def _write(self) -> None:
        fd = self._out.fileno()
        try:
            written = os.write(fd, self._unsent)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._died(exc)
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
        except OSError as exc:
            self._died(exc)
            return
        if not data:
            self._died("its pipe closed")
            return
        self._received += data
        for outcomes in _frames(self._received):
            for (route, result), count in outcomes.items():
                self._outcome(route, result, count)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is batched (and what was dropped behind, to be stored), let the
        shadow process finish the copies in flight (``GRACE``) and write them, and stop
        it — within ``timeout`` whatever it does: one that does not read is killed."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._dead:
            return
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._in.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self._out.fileno())
        self._flush(closing=True)
        end = pickle.dumps(None)
        self._unsent += _FRAME.pack(len(end)) + end
        deadline = time.monotonic() + timeout
        fd = self._out.fileno()
        with contextlib.suppress(OSError):
            while self._unsent:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    break  # it does not read: killed below
                del self._unsent[: os.write(fd, self._unsent)]
        self._out.close()
        self.process.join(max(0.0, deadline - time.monotonic()))
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
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


def _frames(buffer: bytearray) -> list[Any]:
    """The whole frames at the start of ``buffer``, unpickled and taken out of it."""
    found = []
    while len(buffer) >= _FRAME.size:
        (size,) = _FRAME.unpack_from(buffer)
        if len(buffer) < _FRAME.size + size:
            break
        found.append(pickle.loads(buffer[_FRAME.size : _FRAME.size + size]))  # noqa: S301 - our own pipe
        del buffer[: _FRAME.size + size]
    return found


def _recorder_main(
    incoming: multiprocessing.connection.Connection,
    outgoing: multiprocessing.connection.Connection,
) -> None:
    # A Ctrl-C or SIGTERM for the facade's process group must not cut the process short:
    # it ends when the worker says so, or when the worker's end of the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _background()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    shadow = _ShadowProcess(loop, incoming, outgoing)
    try:
        loop.run_until_complete(shadow.run())
    finally:
        shadow.close()
        loop.close()


class _ShadowProcess:
    """The shadow process's side: jobs in, copies out, pairs compared and stored."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        incoming: multiprocessing.connection.Connection,
        outgoing: multiprocessing.connection.Connection,
    ) -> None:
        self.loop = loop
        self.incoming = incoming
        self.outgoing = outgoing
        self.copier = Copier(loop, self._pair, self._count)
        self.writers: dict[Path, Writer] = {}
        self.keep: dict[Path, dict[str, int]] = {}
        self.pairs: list[Pair] = []
        self.counts: dict[Path, dict[tuple[str, str], int]] = {}
        self.outcomes: dict[tuple[str, str], int] = {}
        self._received = bytearray()
        self._flusher: asyncio.TimerHandle | None = None
        self._ended: asyncio.Future[None] = loop.create_future()

    async def run(self) -> None:
        fd = self.incoming.fileno()
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, self._read)
        await self._ended
        self.loop.remove_reader(fd)
        end = self.loop.time() + GRACE
        while self.copier.busy() and self.loop.time() < end:
            await asyncio.sleep(0.02)
        self.copier.stop()  # what is still in flight or waiting: counted, not forgotten
        await asyncio.sleep(0)  # the cancelled Lambda copies count themselves
        self._flush()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self.copier.close()
        for writer in self.writers.values():
            writer.close()

    def _read(self) -> None:
        try:
            data = os.read(self.incoming.fileno(), 1 << 20)
        except BlockingIOError:
            return
        if not data:  # the worker is gone
            self._end()
            return
        self._received += data
        for batch in _frames(self._received):
            if batch is None:  # the worker is closing
                self._end()
                return
            for item in batch:
                if type(item) is Count:
                    self._store_count(item.route, item.store, item.name)
                else:
                    job = Job._make(item)
                    self.keep.setdefault(job.store, {})[job.route] = job.rules.keep
                    self.copier.start(job)

    def _end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    def _store_count(self, route: str, store: Path, name: str) -> None:
        per_store = self.counts.setdefault(store, {})
        per_store[route, name] = per_store.get((route, name), 0) + 1
        self._soon()

    def _count(self, route: str, store: Path, name: str) -> None:
        """A copy dropped or failed here: stored, and an outcome for the worker's series."""
        key = (route, name.partition(":")[0])
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        self._store_count(route, store, name)

    def _pair(self, pair: Pair) -> None:
        self.pairs.append(pair)
        if len(self.pairs) >= BATCH:
            self._flush()
        else:
            self._soon()

    def _soon(self) -> None:
        if self._flusher is None:
            self._flusher = self.loop.call_later(FLUSH, self._flush)

    def _flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        pairs, self.pairs = self.pairs, []
        counts, self.counts = self.counts, {}
        comparisons: dict[Path, list[Comparison]] = {}
        outcomes = self.outcomes
        for pair in pairs:
            found = comparisons.setdefault(pair.store, [])
            try:
                compared = _compare(pair)
            except Exception as exc:  # an answer it cannot read: counted, the rest goes on
                log.warning("shadow pair %s %s not compared: %r", pair.method, pair.path, exc)
                per_store = counts.setdefault(pair.store, {})
                key = (pair.route, "error:compare")
                per_store[key] = per_store.get(key, 0) + 1
                outcomes[pair.route, "error"] = outcomes.get((pair.route, "error"), 0) + 1
                continue
            for comparison, result in compared:
                found.append(comparison)
                outcomes[pair.route, result] = outcomes.get((pair.route, result), 0) + 1
        for store in comparisons.keys() | counts.keys():
            try:
                writer = self.writers.get(store)
                if writer is None:
                    writer = self.writers[store] = Writer(store, self.keep.setdefault(store, {}))
                writer.write(comparisons.get(store, []), counts.get(store, {}))
            except Exception:  # this store's batch is lost; the others and the series not
                log.exception("the shadow store %s could not be written", store)
        if outcomes:
            self.outcomes = {}
            with contextlib.suppress(OSError):
                self.outgoing.send(outcomes)


def _text(text: str) -> str:
    """Text SQLite can store: a lone surrogate (half of an emoji, cut) becomes '?'."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


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
        fields = tuple(_text(redactor.text(d.field)) for d in noise)
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
                _text(redactor.text(d.field)),
                _text(redactor.text(d.where)),
                line,
                headers,
                _text(redactor.fragment(d.where, d.primary)),
                _text(redactor.fragment(d.where, d.other)),
            )
            for d in differences
        )
        fields = tuple(_text(redactor.text(d.field)) for d in differences)
        found.append((Comparison(pair.route, point, SHADOW, fields, examples), "differing"))
    return found


__all__ = ["Count", "Recorder"]
