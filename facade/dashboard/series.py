"""The dashboard's short memory: a bounded ring of the facade's figures, one sample a
period, turned into per-backend time series (request rate, error rate, p50, p99) and the
share each backend actually took over the last minute.

The facade's metrics are cumulative counters (``facade.proxy.metrics``); a chart needs
increments. Every period the ring records the cumulative totals of each route x backend
— summed over every worker of ``serve --workers N``, as a scrape sums them — together
with the point computed from the previous sample. A ring holds ``HORIZON`` seconds
(15 minutes): at one sample a second and a handful of route x backend pairs, a few
hundred kilobytes, whatever the traffic.

A counter that went down (a worker restarted and its figures were lost) counts from
zero again, as Prometheus' ``rate`` does. Quantiles interpolate inside the latency
bucket the rank falls in, as ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from facade.proxy.metrics import BUCKETS, BackendTotals

HORIZON = 15 * 60.0  # seconds of history kept
SHARE_WINDOW = 60.0  # seconds the observed share is measured over
Key = tuple[str, str]  # (route, backend)


@dataclass(frozen=True)
class Point:
    """One backend's figures over one period."""

    requests: float  # cumulative, for the shares
    count: float  # requests in the period
    rate: float  # requests per second
    error_rate: float | None  # share of 5xx, percent; None without requests
    p50: float | None  # milliseconds
    p99: float | None


@dataclass(frozen=True)
class Sample:
    at: float
    points: Mapping[Key, Point]


def quantile(q: float, buckets: tuple[float, ...]) -> float | None:
    """The q-quantile (seconds) of requests counted per bucket of ``BUCKETS`` (+Inf
    last), interpolated linearly inside its bucket; None when nothing was counted."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for bound, count in zip((*BUCKETS, math.inf), buckets, strict=True):
        if count > 0 and seen + count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last bound: its lower edge is all we know
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        if not math.isinf(bound):
            lower = bound
    return lower


def _point(now: BackendTotals, then: BackendTotals | None, seconds: float) -> Point:
    if then is None or now.requests < then.requests or now.errors < then.errors:
        then = BackendTotals(0.0, 0.0, (0.0,) * len(now.buckets), 0.0)
    requests = now.requests - then.requests
    buckets = tuple(max(a - b, 0.0) for a, b in zip(now.buckets, then.buckets, strict=True))
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    return Point(
        requests=now.requests,
        count=requests,
        rate=requests / seconds if seconds > 0 else 0.0,
        error_rate=100.0 * (now.errors - then.errors) / requests if requests else None,
        p50=None if p50 is None else p50 * 1000,
        p99=None if p99 is None else p99 * 1000,
    )


class Ring:
    """Samples of the totals, oldest first, at most ``HORIZON / period`` of them."""

    def __init__(
        self, totals: Callable[[], Mapping[Key, BackendTotals]], period: float = 1.0
    ) -> None:
        self.totals = totals
        self.period = period
        self.samples: deque[Sample] = deque(maxlen=int(HORIZON / period) + 1)
        self._last: tuple[float, Mapping[Key, BackendTotals]] | None = None

    def sample(self, now: float) -> None:
        """Record the totals as of ``now`` (seconds, any monotonic origin)."""
        totals = self.totals()
        if self._last is None:
            self._last = (now, totals)
            return
        then, before = self._last
        seconds = now - then
        points = {key: _point(value, before.get(key), seconds) for key, value in totals.items()}
        self.samples.append(Sample(now, points))
        self._last = (now, totals)

    def observed_shares(self, route: str, now: float) -> dict[str, float] | None:
        """Each backend's share (percent) of the route's requests over the last
        ``SHARE_WINDOW`` seconds (as far back as the ring goes); None without requests."""
        if self._last is None:
            return None
        latest_at, latest = self._last
        base: Mapping[Key, Point] = {}
        for sample in self.samples:
            if sample.at >= latest_at - SHARE_WINDOW:
                break
            base = sample.points
        counts: dict[str, float] = {}
        for (name, backend), totals in latest.items():
            if name != route:
                continue
            earlier = base.get((name, backend))
            start = earlier.requests if earlier and earlier.requests <= totals.requests else 0.0
            counts[backend] = totals.requests - start
        total = sum(counts.values())
        if total <= 0:
            return None
        return {backend: 100.0 * count / total for backend, count in counts.items()}

    def latest(self, key: Key) -> Point | None:
        return self.samples[-1].points.get(key) if self.samples else None

    def series(self, origin: float) -> dict[str, Any]:
        """Every route's series: ``t`` (seconds since the epoch, given the epoch time of
        the monotonic origin) and per backend its requests per period, rate, error rate,
        p50 and p99."""
        routes: dict[str, dict[str, Any]] = {}
        keys = sorted({key for sample in self.samples for key in sample.points})
        times = [round(origin + sample.at, 3) for sample in self.samples]
        for route, backend in keys:
            entry = routes.setdefault(route, {"backends": {}})
            rows: dict[str, list[float | None]] = {
                "count": [],
                "rate": [],
                "errors": [],
                "p50": [],
                "p99": [],
            }
            for sample in self.samples:
                point = sample.points.get((route, backend))
                rows["count"].append(None if point is None else point.count)
                rows["rate"].append(None if point is None else round(point.rate, 3))
                rows["errors"].append(
                    None
                    if point is None or point.error_rate is None
                    else round(point.error_rate, 3)
                )
                rows["p50"].append(
                    None if point is None or point.p50 is None else round(point.p50, 3)
                )
                rows["p99"].append(
                    None if point is None or point.p99 is None else round(point.p99, 3)
                )
            entry["backends"][backend] = rows
        return {"t": times, "period": self.period, "routes": routes}


__all__ = ["HORIZON", "SHARE_WINDOW", "Point", "Ring", "Sample", "quantile"]
