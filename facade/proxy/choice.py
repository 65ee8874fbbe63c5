"""Where the weighted choice is made: which backend of a route serves a request.

In order of precedence:

1. **override** — a tester's header naming a backend of the route (only when enabled);
2. **stable key** — a header or cookie value (a user or tenant id) hashed with the
   route's name into one of 1000 buckets; buckets are laid out over the targets in
   name order, so raising a canary from 10 % to 20 % moves exactly the users in the
   buckets between, and nobody flaps back and forth;
3. **sticky cookie** — like ALB target-group stickiness: the first response pins the
   client to the backend it got for the configured duration; a cookie naming a backend
   that no longer has weight (after a rollback) is ignored, so rollback is immediate;
4. **weight** — a uniformly random bucket out of 1000, the same shares ALB applies.

Cookies are signed with a per-deployment secret: a client cannot pick its backend by
writing the cookie itself.

Every possible ``Choice`` of a table is built once, with the response headers that name
its route and backend (and set its sticky cookie) already encoded: choosing allocates
nothing, and the proxy appends those bytes to the response head as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from facade.routing.model import SHARE_TOTAL, FacadeSettings, Route, RoutingTable

OVERRIDE, STABLE_KEY, STICKY, WEIGHT = "override", "stable_key", "sticky", "weight"


@dataclass(frozen=True)
class Choice:
    backend: str
    decision: str
    set_cookie: str | None = None
    # the response header lines naming route and backend, and the cookie, as sent
    head: bytes = field(default=b"", compare=False, repr=False)


def _head(settings: FacadeSettings, route: str, backend: str, set_cookie: str | None) -> bytes:
    return (
        f"{settings.backend_header}: {backend}\r\n{settings.route_header}: {route}\r\n"
        + (f"set-cookie: {set_cookie}\r\n" if set_cookie else "")
    ).encode("latin-1")


class _RoutePlan:
    __slots__ = (
        "buckets",
        "cookie_name",
        "cookie_values",
        "decided",
        "route",
        "set_cookie",
        "targets",
        "weighted",
    )

    def __init__(self, route: Route, settings: FacadeSettings, secret: bytes) -> None:
        self.route = route
        self.targets = frozenset(t.backend for t in route.targets)
        buckets: list[str] = []
        for target in sorted(route.targets, key=lambda t: t.backend):
            buckets.extend([target.backend] * target.share)
        assert len(buckets) == SHARE_TOTAL, route
        self.buckets = tuple(buckets)
        # Choices are immutable: build each possible one once, hand out the same object.
        self.decided = {
            (t.backend, d): Choice(t.backend, d, None, _head(settings, route.name, t.backend, None))
            for t in route.targets
            for d in (OVERRIDE, STABLE_KEY, STICKY, WEIGHT)
        }
        self.cookie_name = f"{settings.sticky_cookie}-{route.name}"
        self.cookie_values: dict[str, str] = {}
        self.set_cookie: dict[str, Choice] = {}
        if route.stickiness:
            for target in route.targets:
                sig = hmac.new(secret, f"{route.name}:{target.backend}".encode(), hashlib.sha256)
                value = f"{target.backend}.{sig.hexdigest()[:20]}"
                if target.share:
                    self.cookie_values[value] = target.backend
                set_cookie = (
                    f"{self.cookie_name}={value}; Max-Age={route.stickiness.duration}; "
                    "Path=/; HttpOnly; SameSite=Lax"
                )
                self.set_cookie[target.backend] = Choice(
                    target.backend,
                    WEIGHT,
                    set_cookie,
                    _head(settings, route.name, target.backend, set_cookie),
                )
        # bucket → the choice a random draw landing there makes (a first sticky answer
        # sets the cookie)
        self.weighted = tuple(
            self.set_cookie[b] if route.stickiness else self.decided[b, WEIGHT] for b in buckets
        )


def parse_cookies(header_values: Sequence[str]) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in header_values:
        for pair in header.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep:
                cookies.setdefault(name, value)
    return cookies


class Chooser:
    """Precomputed per table: a choice is a few dict lookups and one random number."""

    def __init__(
        self, table: RoutingTable, secret: bytes, rng: random.Random | None = None
    ) -> None:
        settings = table.settings
        self._override = settings.override.header if settings.override.enabled else None
        self._plans = {
            r.name: _RoutePlan(r, settings, secret)
            for r in table.all_routes
            if r.fixed is None  # a deny rule chooses no backend
        }
        self._random = (rng or random.Random()).random  # noqa: S311 - a traffic split, not a secret

    def choose(self, route: Route, headers: Mapping[str, Sequence[str]]) -> Choice:
        plan = self._plans[route.name]
        if self._override is not None:
            wanted = headers.get(self._override)
            if wanted and wanted[0] in plan.targets:
                return plan.decided[wanted[0], OVERRIDE]
        key = route.stable_key
        if key is not None:
            if key.header is not None:
                values = headers.get(key.header)
                value = values[0] if values else None
            else:
                value = parse_cookies(headers.get("cookie", ())).get(key.cookie or "")
            if value:
                bucket = zlib.crc32(f"{route.name}\x00{value}".encode()) % SHARE_TOTAL
                return plan.decided[plan.buckets[bucket], STABLE_KEY]
        if route.stickiness is not None:
            cookie = parse_cookies(headers.get("cookie", ())).get(plan.cookie_name)
            pinned = plan.cookie_values.get(cookie) if cookie else None
            if pinned is not None:
                return plan.decided[pinned, STICKY]
        return plan.weighted[int(self._random() * SHARE_TOTAL)]
