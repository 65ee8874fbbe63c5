"""The route table as immutable data: what ``routing.yaml`` means once validated.

Everything derived from routing.yaml — the local proxy, ALB rules, API Gateway, SAM —
reads these objects, never the YAML. They are built once by ``facade.routing.loader``
and never mutated: a change (shift, promote, rollback, reload) builds a new table.

Weights are stored in tenths of a percent (``share``: 0..1000, summing to 1000 per
route), the one unit both the local proxy and ALB's integer weights can express
exactly; ``alb_weights`` maps them onto ALB's 0..999 range without loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from urllib.parse import urlsplit

from facade.rollout.plan import RolloutPlan, VersionCanary
from facade.sync.conflict import SIDE_ENV, TWO_WAY_ENV, TwoWay, two_way_env

SHARE_TOTAL = 1000  # tenths of a percent
ALB_MAX_WEIGHT = 999


def parse_share(value: object) -> int | None:
    """A percentage (0-100, steps of 0.1) as tenths of a percent, or None if invalid."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        tenths = Decimal(str(value)) * 10
    except InvalidOperation:
        return None
    if tenths != tenths.to_integral_value() or not 0 <= tenths <= SHARE_TOTAL:
        return None
    return int(tenths)


class BackendKind(StrEnum):
    MONOLITH = "monolith"
    LAMBDA = "lambda"
    ECS = "ecs"
    URL = "url"


@dataclass(frozen=True)
class LocalRun:
    """How ``strangler up`` runs a backend on one machine (routing.yaml ``local:``).

    Commands are shell-like strings (split with ``shlex``, never run by a shell) with
    ``{python}``, ``{host}``, ``{port}``, ``{bind}`` and ``{url}`` filled from the
    backend, and ``${VAR}`` / ``${VAR:-default}`` from the environment.
    """

    setup: tuple[str, ...] = ()  # run once, in order, before any service starts
    run: str | None = None  # the long-running process (None: runs inside the facade)
    health: str = "/healthz"  # path on the backend's url that answers 2xx when ready
    env: Mapping[str, str] = field(default_factory=dict)
    workers: Mapping[str, str] = field(default_factory=dict)  # name → command, no health check


@dataclass(frozen=True)
class LocalAws:
    """The AWS-API stand-in of the local stack and what to create in it."""

    endpoint: str  # http://HOST:PORT: moto, every API without a stand-in of its own
    dynamodb: str | None = None  # http://HOST:PORT for dynalite (None: moto serves it)
    sqs: str | None = None  # http://HOST:PORT for fauxqs (None: moto serves it)
    data: str | None = None  # folder where dynalite keeps its tables (None: in memory)
    setup: tuple[str, ...] = ()  # "module:function" hooks, run once the stand-ins listen


@dataclass(frozen=True)
class SyncStream:
    """One direction of the data sync: an SQS FIFO queue and its dead-letter queue."""

    name: str
    queue: str  # FIFO queue name, ends in .fifo
    source: str  # backend whose outbox publishes (e.g. the monolith)
    target: str  # backend whose consumer applies
    max_receives: int = 5  # receives before a message moves to the DLQ
    visibility_timeout: int = 30  # seconds
    retention: int = 345_600  # seconds a message is kept (4 days, SQS's default)
    dlq_retention: int = 1_209_600  # 14 days, SQS's maximum: time to fix and replay
    # how the toolkit reaches each side here: backfill, emit, outbox_status, inbox_status,
    # source_digest, target_digest (facade.sync.commands)
    commands: Mapping[str, str] = field(default_factory=dict)
    # a Lambda target's SQS handler ("module:function"), for its event source on AWS
    consumer: str | None = None
    # SQS's limit for one message and one SendMessageBatch (256 KiB; AWS allows 1 MiB)
    max_message_bytes: int = 262_144
    # both sides change the entities it carries: the pair, its lifecycle and id split
    two_way: TwoWay | None = None

    @property
    def dlq(self) -> str:
        return self.queue.removesuffix(".fifo") + "-dlq.fifo"


@dataclass(frozen=True)
class LocalStack:
    aws: LocalAws | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # for every local process


@dataclass(frozen=True)
class Faults:
    """Faults the local facade injects into a backend's requests (routing.yaml ``faults:``),
    as Envoy's fault filter does: for game days and tests, never rendered for AWS.

    Shares are tenths of a percent (0..1000) like a target's. A request picked for a
    delay is held ``delay_seconds`` before it goes on; one picked for an abort (after any
    delay) is answered ``abort_status`` by the facade in the backend's name.
    """

    abort_share: int = 0  # tenths of a percent of the backend's requests
    abort_status: int = 503
    delay_share: int = 0
    delay_seconds: float = 0.0

    @property
    def abort_percent(self) -> float:
        return self.abort_share / 10

    @property
    def delay_percent(self) -> float:
        return self.delay_share / 10

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The ``faults:`` block of routing.yaml (and the admin API's JSON) that means this."""
        block: dict[str, dict[str, float]] = {}
        if self.abort_share:
            block["abort"] = {"percent": _number(self.abort_share), "status": self.abort_status}
        if self.delay_share:
            block["delay"] = {"percent": _number(self.delay_share), "seconds": self.delay_seconds}
        return block


def _number(share: int) -> float:
    """Tenths of a percent as the percentage a person writes: 10 for 100, 0.5 for 5."""
    return share // 10 if share % 10 == 0 else share / 10


@dataclass(frozen=True)
class Backend:
    """Where requests for a route can go, locally and on AWS."""

    name: str
    kind: BackendKind
    url: str | None = None  # http://host:port for everything but in-process Lambda handlers
    handler: str | None = None  # "module:function" for a Lambda run in-process
    multi_value_headers: bool = False  # the Lambda target group's multi-value setting
    aws: Mapping[str, object] = field(default_factory=dict)
    local: LocalRun | None = None
    faults: Faults | None = None  # local facade only; None when nothing is injected
    canary: VersionCanary | None = None  # a new version of a Lambda function, canaried

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of ``url``; the loader guarantees both are present."""
        parts = urlsplit(self.url or "")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"backend {self.name!r} has no http://HOST:PORT url")
        return parts.hostname, parts.port


@dataclass(frozen=True)
class HeaderCondition:
    name: str  # lower-cased: header names are case-insensitive
    values: tuple[str, ...]  # ALB wildcards, compared case-insensitively


@dataclass(frozen=True)
class Match:
    paths: tuple[str, ...] = ()  # ALB path patterns; empty = any path
    methods: tuple[str, ...] = ()  # upper-case; empty = any method
    headers: tuple[HeaderCondition, ...] = ()

    @property
    def evaluations(self) -> int:
        return len(self.paths) + len(self.methods) + sum(len(h.values) for h in self.headers)


@dataclass(frozen=True)
class Target:
    backend: str
    share: int  # tenths of a percent, 0..1000

    @property
    def percent(self) -> float:
        return self.share / 10


@dataclass(frozen=True)
class Stickiness:
    duration: int  # seconds, 1..604800 as on ALB


@dataclass(frozen=True)
class StableKey:
    """Hash this request header or cookie to pick the backend, so a user stays put."""

    header: str | None = None  # lower-cased
    cookie: str | None = None


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    max_age: int = 0
    allow_credentials: bool = False


@dataclass(frozen=True)
class Jwt:
    """A JWT authorizer: the issuer (a Cognito user pool's URL) and accepted audiences."""

    issuer: str
    audience: tuple[str, ...]


@dataclass(frozen=True)
class ApiSettings:
    """The public edge on AWS (routing.yaml ``api:``), for ``strangler render apigw``."""

    name: str = "strangler"
    cors: Cors | None = None
    burst: int | None = None  # throttling of the stage's routes
    rate: int | None = None
    jwt: Jwt | None = None


@dataclass(frozen=True)
class FixedResponse:
    """A deny rule: the route answers this itself, locally and as an ALB ``fixed-response``
    action (status 2XX/4XX/5XX, one of ALB's content types, a body of at most 1 KB)."""

    status: int
    content_type: str = "text/plain"
    body: str = ""


class NormalizeKind(StrEnum):
    TIMESTAMP = "timestamp"  # any ISO 8601 date-time compares equal to any other
    UUID = "uuid"  # any UUID compares equal to any other
    NUMBER = "number"  # numbers within ``tolerance`` of each other compare equal


@dataclass(frozen=True)
class Normalizer:
    """A value known to differ by nature, and how to compare it (a JSON path pattern)."""

    path: str
    kind: NormalizeKind
    tolerance: float = 0.0  # for numbers: largest difference still equal


# Methods that change nothing: mirrored by default. Anything else is a write.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Shadow:
    """Copies of a route's requests sent to another backend, answers compared
    (routing.yaml ``shadow:`` of a route; ``facade.routing.shadow_block``)."""

    backend: str  # receives the copies; its answers never reach a client
    share: int = SHARE_TOTAL  # tenths of a percent of the route's requests copied
    methods: tuple[str, ...] = SAFE_METHODS
    writes: bool = False  # writes may be mirrored (marked X-Strangler-Shadow: write)
    noise: int = 100  # tenths of a percent of safe copies also sent to the primary again
    max_concurrent: int = 32  # shadows in flight per route and worker; more: dropped
    timeout: float = 5.0  # seconds for a shadow's whole answer; later: an error
    max_body_bytes: int = 256 * 1024  # request or answers larger: not compared, dropped
    headers: tuple[str, ...] = ("content-type",)  # response headers compared, lower-case
    ignore: tuple[str, ...] = ()  # JSON path patterns never compared
    sets: tuple[str, ...] = ()  # JSON path patterns of arrays compared as sets
    normalize: tuple[Normalizer, ...] = ()
    relative: float = 0.20  # a field is reported when its difference rate exceeds its
    absolute: float = 0.0003  # noise rate by both thresholds (Diffy's: 20 %, 0.03 %)
    redact: tuple[str, ...] = ()  # more field, parameter and header names never stored
    store: str = "var/shadow.sqlite3"  # relative to the routing file's folder
    keep: int = 10_000  # comparisons kept per route (the latest)

    @property
    def percent(self) -> float:
        return self.share / 10


@dataclass(frozen=True)
class Route:
    name: str
    priority: int
    match: Match
    targets: tuple[Target, ...]
    stickiness: Stickiness | None = None
    stable_key: StableKey | None = None
    line: int = 0  # where the route starts in its file, for messages
    auth: bool = False  # the API's JWT authorizer guards it (render apigw)
    fixed: FixedResponse | None = None  # a deny rule: no targets, this answer instead
    shadow: Shadow | None = None  # copies to another backend, answers compared
    rollout: RolloutPlan | None = None  # how `strangler rollout` moves it

    @property
    def is_split(self) -> bool:
        return sum(1 for t in self.targets if t.share) > 1

    def share_of(self, backend: str) -> int:
        return next((t.share for t in self.targets if t.backend == backend), 0)


@dataclass(frozen=True)
class Override:
    """Testers' header that forces a backend ("send me to the new service")."""

    enabled: bool = False
    header: str = "x-strangler-backend-override"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    read: float = 30.0
    lambda_: float = 30.0


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the facade (routing.yaml ``facade.limits``).

    The sizes are ALB's documented quotas (request line 16 KiB, a single header 16 KiB,
    the whole request header 64 KiB) and its idle timeout (60 s); the rest guard a
    single process where ALB scales out: a header count, the time a client may take to
    send a request's head, open connections per worker, and requests read ahead of
    their answers on one connection.
    """

    request_line: int = 16 * 1024  # bytes; longer: 414
    header: int = 16 * 1024  # bytes of one header line; larger: 431
    headers: int = 64 * 1024  # bytes of the whole request head; larger: 431
    header_count: int = 100  # more header lines: 431
    header_timeout: float = 60.0  # seconds to send a request's head; slower: 408
    idle_timeout: float = 60.0  # seconds a connection may stay silent between requests
    connections: int = 10_000  # open client connections per worker; more: 503
    pipeline: int = 16  # requests read ahead of their answers on one connection


@dataclass(frozen=True)
class FacadeSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    backend_header: str = "X-Strangler-Backend"
    route_header: str = "X-Strangler-Route"
    override: Override = Override()
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    max_body_bytes: int = 10 * 1024 * 1024
    max_rules: int = 100
    sticky_cookie: str = "STRANGLERTG"
    admin_token_env: str = "STRANGLER_ADMIN_TOKEN"  # noqa: S105 - a variable name
    admin_token_file: str | None = None
    # the admin listener (health, metrics, admin API): loopback unless told otherwise
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    # the sticky cookie's signing key, shared by every worker and instance
    cookie_secret_env: str = "STRANGLER_COOKIE_SECRET"  # noqa: S105 - a variable name
    cookie_secret_file: str | None = None
    audit_log: str = "var/routing-audit.jsonl"
    access_log: bool = True


@dataclass(frozen=True)
class RoutingTable:
    source: str  # the file it came from, for messages
    settings: FacadeSettings
    backends: Mapping[str, Backend]
    routes: tuple[Route, ...]  # in priority order (lowest number first)
    default: Route  # the ALB listener's default action: never has conditions
    local: LocalStack = LocalStack()
    sync: tuple[SyncStream, ...] = ()
    api: ApiSettings = ApiSettings()

    def stream(self, name: str) -> SyncStream:
        for stream in self.sync:
            if stream.name == name:
                return stream
        known = ", ".join(s.name for s in self.sync) or "none"
        raise KeyError(f"no sync stream named {name!r}; streams: {known}")

    def two_way_pairs(self, backend: str | None = None) -> tuple[TwoWay, ...]:
        """The two-way pairs of streams (each once), or only those ``backend`` is a side of."""
        pairs: dict[tuple[str, str], TwoWay] = {}
        for stream in self.sync:
            pair = stream.two_way
            if pair is not None and (backend is None or backend in pair.sides):
                pairs[pair.streams] = pair
        return tuple(pairs.values())

    def sync_environment(self, backend: str) -> dict[str, str]:
        """What a side of two-way streams that does not read this file (a Lambda
        function) finds in its environment: its pairs (lifecycle, id split) and its own
        name — locally (``strangler up``) and on AWS (``render sam``) alike."""
        pairs = self.two_way_pairs(backend)
        if not pairs:
            return {}
        return {TWO_WAY_ENV: two_way_env(pairs), SIDE_ENV: backend}

    def route(self, name: str) -> Route:
        for route in (*self.routes, self.default):
            if route.name == name:
                return route
        known = ", ".join(r.name for r in (*self.routes, self.default))
        raise KeyError(f"no route named {name!r}; routes: {known}")

    @property
    def all_routes(self) -> tuple[Route, ...]:
        return (*self.routes, self.default)


def alb_weights(targets: tuple[Target, ...]) -> tuple[int, ...]:
    """Integer ALB weights (0..999) with exactly the same proportions as the shares."""
    nonzero = [t.share for t in targets if t.share]
    divisor = math.gcd(*nonzero) if nonzero else 1
    weights = tuple(t.share // divisor for t in targets)
    if max(weights, default=0) > ALB_MAX_WEIGHT:  # only 1000/1000 = a single target
        weights = tuple(1 if w else 0 for w in weights)
    return weights


def shares_from_alb(weights: tuple[int, ...]) -> tuple[int, ...]:
    """Read ALB weights back as tenths of a percent (the inverse of ``alb_weights``)."""
    total = sum(weights)
    if not total:
        raise ValueError("a forward action needs at least one non-zero weight")
    return tuple(round(w * SHARE_TOTAL / total) for w in weights)
