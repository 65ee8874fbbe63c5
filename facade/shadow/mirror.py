"""The mirror: which of a route's requests are copied to its shadow backend — decided in
the facade worker, while the copies themselves are made elsewhere.

For a request on a route with a ``shadow`` block, once the request has been read:

1. **whether to copy** — the method is one of ``shadow.methods`` (writes only with
   ``writes: true``); the backend that serves the request is not the shadow itself; the
   request falls in ``shadow.percent`` — by its stable key where the route has one (the
   same hash as the choice of backend, so a user's whole session is copied or none of
   it), else by a random draw; its body is at most ``shadow.max_body_bytes`` (larger:
   dropped and counted);
2. **the capture** — the primary's answer is captured as it streams to the client,
   bounded by ``shadow.max_body_bytes`` (``facade.shadow.capture``);
3. **the hand-over** — when the primary's answer is complete, the request and that
   answer go, batched and pickled, down a pipe to the worker's shadow process
   (``facade.shadow.recorder``), which sends the copies (``facade.shadow.copier``: the
   concurrency cap, the shadow and noise copies, their timeouts), compares, redacts and
   stores. A primary that failed (the facade answered 502/504) is not copied.

A copy costs the worker what it takes to pickle the request and the answer: a second
upstream exchange, its parsing and its timeout would cost about twice the primary's own
CPU, and the shadow process runs in Linux's idle scheduling class — it gets only the CPU
the workers leave. Nothing on this path can change, delay or fail the primary: every
failure of a copy ends in a counter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facade.proxy.choice import parse_cookies
from facade.routing.model import SHARE_TOTAL, Route, RoutingTable
from facade.shadow.capture import Capture, Raw
from facade.shadow.recorder import Count, Recorder
from facade.shadow.store import store_file

if TYPE_CHECKING:
    from facade.proxy.metrics import Metrics

log = logging.getLogger("strangler.shadow")


class Mirror:
    """The shadow side of one facade worker: what to copy, and its shadow process."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        listen_port: int = 0,
    ) -> None:
        self.loop = loop
        self.metrics = metrics
        self.listen_port = listen_port
        self._random = (rng or random.Random()).random  # noqa: S311 - sampling, not a secret
        self._recorder: Recorder | None = None
        self._stores: dict[tuple[str, str], Path] = {}

    @property
    def recorder(self) -> Recorder:
        """The shadow process, started with the first copy (most tables shadow nothing)."""
        if self._recorder is None:
            self._recorder = Recorder(self.loop, self.metrics.shadow)
        return self._recorder

    # -- called by the proxy ------------------------------------------------------------

    def copy(
        self,
        table: RoutingTable,
        route: Route,
        served_by: str,
        method: str,
        path: str,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        header_map: Mapping[str, Sequence[str]],
        body: bytes,
        client_ip: str,
        trace: str,
    ) -> Capture | None:
        """Whether a request the primary is serving is copied: the capture of the
        primary's answer that hands the request over once the answer is complete, or None.
        Never raises: whatever goes wrong with a copy is the copy's problem, logged, and
        the primary goes on."""
        try:
            rules = route.shadow
            if rules is None or method not in rules.methods or served_by == rules.backend:
                return None
            if not self._sampled(route, rules.share, header_map):
                return None
            store = self._stores.get((table.source, rules.store))
            if store is None:
                store = self._stores[table.source, rules.store] = store_file(table, route.name)
            if len(body) > rules.max_body_bytes:
                self.count(route.name, store, "dropped:body")
                return None
            override = table.settings.override.header.lower().encode("latin-1")
            # a ``copier.Job`` but for the primary's answer, added once it is complete
            job = (
                route.name, store, rules, method, path, query, headers, body, client_ip, trace,
                override, self.listen_port, table.backends[rules.backend],
                table.backends[served_by],
            )  # fmt: skip
            return Capture(rules.max_body_bytes, functools.partial(self._answered, job))
        except Exception:
            log.exception("shadow copy of %s %s failed to start", method, path)
            return None

    def _answered(self, job: tuple[Any, ...], answer: Raw | None, why: str) -> None:
        if answer is None:  # the primary failed, or answered more than can be compared
            self.count(job[0], job[1], f"dropped:{why}")
        else:
            self.recorder.submit((*job, *answer, time.monotonic()))

    def count(self, route: str, store: Path, name: str) -> None:
        """A copy not made here (``dropped:<why>``): counted, and kept in the store."""
        self.metrics.shadow(route, name.partition(":")[0])
        self.recorder.submit(Count(route, store, name))

    def _sampled(self, route: Route, share: int, headers: Mapping[str, Sequence[str]]) -> bool:
        if share >= SHARE_TOTAL:
            return True
        key = route.stable_key
        value: str | None = None
        if key is not None:
            if key.header is not None:
                values = headers.get(key.header)
                value = values[0] if values else None
            else:
                value = parse_cookies(headers.get("cookie", ())).get(key.cookie or "")
        if value:  # the choice's hash, salted apart so the copied share is not one backend's
            bucket = zlib.crc32(f"{route.name}\x00shadow\x00{value}".encode()) % SHARE_TOTAL
        else:
            bucket = int(self._random() * SHARE_TOTAL)
        return bucket < share

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()


__all__ = ["Mirror"]
