"""Faults the facade injects into a backend's requests, as Envoy's fault filter does.

A backend's ``faults`` (routing.yaml, or the admin API, which writes the same file) act
after the routing decision, on the requests that chose that backend — so faults on a
canary hit only the canary's share of a route, and a backend that was not chosen is
never touched. For each such request, in Envoy's order:

1. **delay** — with probability ``delay_percent``, the request is held ``delay_seconds``
   by a timer on the event loop (nothing waits, other requests go on) before it goes on;
2. **abort** — with probability ``abort_percent``, the facade answers ``abort_status``
   itself with a JSON body, and the request never reaches the backend.

Either way the answer is the chosen backend's: it carries the backend header, and the
metrics and the access log count it against that backend (its status class, its latency
histogram, delay included), so canary analysis sees an injected fault as it would see
the backend failing. ``strangler_facade_faults_injected_total{route,backend,fault}``
counts what was injected. The random source is a parameter, so tests can seed it.
"""

from __future__ import annotations

import asyncio
import random as _random
from collections.abc import Callable

from facade.proxy.metrics import Metrics
from facade.proxy.server import ClientConnection, Request, error_body
from facade.routing.model import SHARE_TOTAL, Backend

JSON = [(b"content-type", b"application/json")]
ABORT, DELAY = "abort", "delay"


class FaultInjector:
    """Decides, per request, whether a backend's faults hit it, and carries them out."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.loop = loop
        self.metrics = metrics
        # uniform in [0, 1): a fault, not a secret
        self.random = random or _random.Random().random  # noqa: S311

    def inject(
        self,
        conn: ClientConnection,
        route: str,
        backend: Backend,
        req: Request,
        headers: dict[str, list[str]],
        query: bytes | None,
    ) -> None:
        """Delay and/or abort the request, or send it on to ``backend`` untouched."""
        faults = backend.faults
        assert faults is not None
        if faults.delay_share and self.random() * SHARE_TOTAL < faults.delay_share:
            self.metrics.fault(route, backend.name, DELAY)
            self.loop.call_later(
                faults.delay_seconds, self._after_delay, conn, route, backend, req, headers, query
            )
            return
        self._after_delay(conn, route, backend, req, headers, query)

    def _after_delay(
        self,
        conn: ClientConnection,
        route: str,
        backend: Backend,
        req: Request,
        headers: dict[str, list[str]],
        query: bytes | None,
    ) -> None:
        if conn.transport is None:  # the client left while its request was held
            return
        faults = backend.faults
        assert faults is not None
        if faults.abort_share and self.random() * SHARE_TOTAL < faults.abort_share:
            self.metrics.fault(route, backend.name, ABORT)
            status = faults.abort_status
            message = f"fault injected: abort with {status} ({faults.abort_percent:g} %)"
            body = error_body(status, "fault_injected", message, route=route, backend=backend.name)
            conn.answer(status, JSON, body)
            return
        conn.dispatch(backend, req, headers, query)


__all__ = ["FaultInjector"]
