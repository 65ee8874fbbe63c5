"""The live migration dashboard: one page on the facade's admin listener.

``GET /__facade/dashboard`` (admin token required; the public listener answers 404 for
every ``/__facade/`` path) shows, for the routing file the facade serves: the route map
(evaluation order, patterns, owner, configured vs observed share, rate / errors / p50 /
p99 per backend over the last 15 minutes), the rollouts (``var/rollouts/``), the
shadows (where ``facade.shadow`` is installed), the data sync's streams and the audit
log, with buttons that shift, promote and roll back routes and steer rollouts — each
confirmed against its before/after weights and made through the command line's own
code (``actions``).

Live updates are polled: each panel asks for itself again every second (htmx's
``hx-trigger="every 1s"``) and the charts fetch their series every two seconds. The
admin listener answers whole responses (``facade.proxy.admin.internal`` returns status,
headers, body), so polling needs nothing new from the proxy's connection handling,
lands on whichever worker accepts it, and survives a worker restart without a
reconnect; server-sent events would need a streaming answer held open per viewer.
A panel whose answer did not change is not swapped.

Where the numbers come from, and the workers: every worker keeps a ``series.Ring`` of
the facade's cumulative figures, sampled once a second from ``Metrics.totals`` — which
sums every worker's figures through the shared metrics directory, as a scrape does — so
whichever worker answers, the page shows all of them. Slow readings (the sync's queues
and outbox commands) run on a thread and are cached a few seconds (``cache``).

The page's JavaScript and CSS libraries (htmx, uPlot) are pinned in the repository's
``package.json`` and ship inside this package (``static/vendor``): the wheel needs no
npm, no CDN and no network.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facade.dashboard.cache import Cached
from facade.dashboard.series import Ring

if TYPE_CHECKING:
    from facade.proxy.server import Facade
    from facade.routing.model import RoutingTable

SYNC_MAX_AGE = 5.0  # seconds a reading of the sync's streams is reused
SHADOW_MAX_AGE = 2.0  # seconds a reading of the shadow stores is reused


class Board:
    """The dashboard's state in one facade process: the series ring and the cached
    sync and shadow figures."""

    def __init__(
        self,
        facade: Facade,
        *,
        period: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.facade = facade
        self.clock = clock
        self.origin = wall() - clock()  # epoch time of the monotonic origin
        self.ring = Ring(facade.metrics.totals, period)
        self.sync: Cached[dict[str, dict[str, Any]]] = Cached(self._read_sync, SYNC_MAX_AGE)
        self.shadows: Cached[list[dict[str, Any]] | None] = Cached(
            self._read_shadows, SHADOW_MAX_AGE
        )
        self._client: tuple[RoutingTable, Any] | None = None
        self._timer: Any = None

    @property
    def routing(self) -> Path:
        return Path(self.facade.live.path)

    def start(self) -> None:
        if self._timer is None:
            self.ring.sample(self.clock())
            self._timer = self.facade.loop.call_later(self.ring.period, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self.ring.sample(self.clock())
        self._timer = self.facade.loop.call_later(self.ring.period, self._tick)

    def _read_sync(self) -> dict[str, dict[str, Any]]:
        """``sync status --json`` of every stream (on a thread: subprocesses and SQS).
        The local stand-ins when the file names them (``local.aws``), AWS otherwise."""
        from facade.sync.cli import gather, sqs_client

        table = self.facade.live.current.table
        if not table.sync:
            return {}
        if self._client is None or self._client[0] is not table:
            self._client = (table, sqs_client(table, table.local.aws is None))
        return gather(table, self.routing, self._client[1], list(table.sync))

    def _read_shadows(self) -> list[dict[str, Any]] | None:
        """Every shadowed route's comparison (on a thread: it reads SQLite stores)."""
        from facade.dashboard import views

        return views.shadows(self.facade.live.current.table)


_boards: weakref.WeakKeyDictionary[Facade, Board] = weakref.WeakKeyDictionary()


def attach(facade: Facade) -> Board:
    """The facade's dashboard state, created (and its sampling started) on first use;
    ``strangler serve`` attaches it at start so that the history begins then."""
    board = _boards.get(facade)
    if board is None:
        board = _boards[facade] = Board(facade)
        board.start()
    return board


__all__ = ["Board", "attach"]
