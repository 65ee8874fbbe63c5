"""The shadow store: a SQLite file (``shadow.store``, under ``var/`` by default).

Three tables, all per route:

``comparisons``  one row per compared pair: its endpoint, its kind (``shadow`` — the
                 primary's answer against the shadow's — or ``noise`` — against the
                 primary's second answer), and the fields that differed. Only the
                 latest ``shadow.keep`` rows of a route are kept (trimmed each time a
                 tenth more were added): rates are over them.
``examples``     at most ``EXAMPLES`` pairs per endpoint and field: the request line, its
                 safe headers and both answers' differing fragments, redacted before
                 they are written (``facade.shadow.redact``).
``counters``     copies not compared: ``dropped:<reason>`` (a cap was reached) and
                 ``error:<kind>`` (the shadow failed or timed out), since the last clear.

Every worker of ``strangler serve`` writes to the same file (WAL, a busy timeout).
``summary`` is what a rollout's gate reads: the route's difference rate, noise removed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path

from facade.routing.model import RoutingTable, Shadow
from facade.shadow.noise import ABSOLUTE, MIN_NOISE, RELATIVE, Rates, is_real

EXAMPLES = 3  # example pairs kept per endpoint and field
MAX_EXAMPLES = 2000  # per route, whatever the number of fields
SHADOW, NOISE = "shadow", "noise"
SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY, route TEXT NOT NULL, endpoint TEXT NOT NULL,
    kind TEXT NOT NULL, at REAL NOT NULL, fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comparisons_by_route ON comparisons (route, id);
CREATE TABLE IF NOT EXISTS examples (
    route TEXT NOT NULL, endpoint TEXT NOT NULL, field TEXT NOT NULL, at REAL NOT NULL,
    request TEXT NOT NULL, primary_answer TEXT NOT NULL, shadow_answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_by_field ON examples (route, endpoint, field);
CREATE TABLE IF NOT EXISTS counters (
    route TEXT NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (route, name)
);
"""


@dataclass(frozen=True)
class Example:
    """One differing pair, as stored: already redacted."""

    field: str
    where: str  # the exact path in this pair
    request: str  # "GET /api/orders/12/?page=2"
    headers: list[tuple[str, str]]  # the request's safe headers
    primary: str  # fragments, JSON text
    shadow: str


@dataclass(frozen=True)
class Comparison:
    route: str
    endpoint: str
    kind: str  # SHADOW or NOISE
    fields: tuple[str, ...]
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class ShadowSummary:
    """What a rollout's gate reads: over the comparisons kept, noise removed."""

    compared: int  # primary-vs-shadow pairs compared
    differing: int  # of those, pairs with at least one real (not noise) difference
    difference_rate: float  # differing / compared (0.0 when nothing was compared)
    dropped: int  # copies not sent or not compared: a cap was reached
    errors: int  # copies the shadow failed or did not answer in time


@dataclass(frozen=True)
class FieldReport:
    field: str
    rates: Rates
    real: bool
    examples: list[Example] = _field(default_factory=list)


@dataclass(frozen=True)
class EndpointReport:
    endpoint: str
    compared: int
    differing: int  # pairs with a real difference
    noise_compared: int
    fields: list[FieldReport]


@dataclass(frozen=True)
class Report:
    route: str
    summary: ShadowSummary
    matched: int
    counters: dict[str, int]
    endpoints: list[EndpointReport]
    relative: float
    absolute: float
    noise_compared: int = 0  # primary-vs-primary pairs (the noise sample)
    noise_differing: int = 0  # of those, pairs with any difference at all


def store_file(table: RoutingTable, route: str) -> Path:
    """Where ``route``'s comparisons are kept: its ``shadow.store`` (the default when the
    route has no shadow block any more), relative to the routing file's folder."""
    rules = table.route(route).shadow
    return Path(table.source).parent / (rules.store if rules else Shadow(backend="").store)


class NotAStore(ValueError):
    """The path given as a shadow store is some other file (a routing file, say)."""


def _check(path: str | Path) -> None:
    """Refuse, before SQLite opens it, a file that is neither empty nor a SQLite database."""
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as file:
        head = file.read(16)
        if head and head != b"SQLite format 3\x00":
            raise NotAStore(
                f"{path} is not a shadow store (a SQLite file); the store of a route is "
                "facade.shadow.store.store_file(table, route)"
            )


@contextlib.contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    _check(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        yield connection
    finally:
        connection.close()


class Writer:
    """Appends comparisons and counts to one store file (one thread uses it)."""

    def __init__(self, path: str | Path, keep: dict[str, int]) -> None:
        self._stack = contextlib.ExitStack()
        self.connection = self._stack.enter_context(connect(path))
        self.keep = keep  # route → comparisons kept
        self._since_trim: dict[str, int] = {}

    def write(self, comparisons: Iterable[Comparison], counts: dict[tuple[str, str], int]) -> None:
        db = self.connection
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO comparisons (route, endpoint, kind, at, fields) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (c.route, c.endpoint, c.kind, now, json.dumps(c.fields) if c.fields else "[]")
                    for c in comparisons
                ],
            )
            for c in comparisons:
                for example in c.examples:
                    self._example(c, example, now)
                self._since_trim[c.route] = self._since_trim.get(c.route, 0) + 1
            for (route, name), count in counts.items():
                db.execute(
                    "INSERT INTO counters (route, name, count) VALUES (?, ?, ?) "
                    "ON CONFLICT (route, name) DO UPDATE SET count = count + excluded.count",
                    (route, name, count),
                )
            for route, added in list(self._since_trim.items()):
                # finding where to cut walks ``keep`` index entries: do it once per tenth
                if added >= max(100, self.keep.get(route, 10_000) // 10):
                    self._trim(route)
                    self._since_trim[route] = 0
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _example(self, c: Comparison, example: Example, now: float) -> None:
        db = self.connection
        (count,) = db.execute(
            "SELECT count(*) FROM examples WHERE route = ? AND endpoint = ? AND field = ?",
            (c.route, c.endpoint, example.field),
        ).fetchone()
        if count >= EXAMPLES:
            return
        (total,) = db.execute(
            "SELECT count(*) FROM examples WHERE route = ?", (c.route,)
        ).fetchone()
        if total >= MAX_EXAMPLES:
            return
        request = json.dumps(
            {"line": example.request, "headers": example.headers, "where": example.where}
        )
        db.execute(
            "INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?)",
            (c.route, c.endpoint, example.field, now, request, example.primary, example.shadow),
        )

    def _trim(self, route: str) -> None:
        keep = self.keep.get(route, 10_000)
        self.connection.execute(
            "DELETE FROM comparisons WHERE route = ? AND id <= "
            "(SELECT id FROM comparisons WHERE route = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (route, route, keep),
        )

    def close(self) -> None:
        self._stack.close()


def clear(store_path: str | Path, route: str) -> int:
    """Forget everything stored of ``route``; the number of comparisons forgotten."""
    if not Path(store_path).exists():
        return 0
    with connect(store_path) as db:
        db.execute("BEGIN IMMEDIATE")
        (count,) = db.execute(
            "SELECT count(*) FROM comparisons WHERE route = ?", (route,)
        ).fetchone()
        for table in ("comparisons", "examples", "counters"):
            db.execute(f"DELETE FROM {table} WHERE route = ?", (route,))  # noqa: S608
        db.execute("COMMIT")
    return int(count)


def report(
    store_path: str | Path, route: str, *, relative: float = RELATIVE, absolute: float = ABSOLUTE
) -> Report:
    """Everything stored of ``route``, fields judged against their noise."""
    rows: list[tuple[str, str, list[str]]] = []
    counters: dict[str, int] = {}
    examples: dict[tuple[str, str], list[Example]] = {}
    if Path(store_path).exists():
        with connect(store_path) as db:
            db.execute("BEGIN")
            rows = [
                (endpoint, kind, json.loads(fields))
                for endpoint, kind, fields in db.execute(
                    "SELECT endpoint, kind, fields FROM comparisons WHERE route = ? ORDER BY id",
                    (route,),
                )
            ]
            counters = dict(
                db.execute("SELECT name, count FROM counters WHERE route = ?", (route,))
            )
            for endpoint, name, request, primary, shadow in db.execute(
                "SELECT endpoint, field, request, primary_answer, shadow_answer FROM examples "
                "WHERE route = ? ORDER BY at",
                (route,),
            ):
                req = json.loads(request)
                examples.setdefault((endpoint, name), []).append(
                    Example(
                        name, req["where"], req["line"],
                        [(str(n), str(v)) for n, v in req["headers"]], primary, shadow,
                    )
                )  # fmt: skip
            db.execute("COMMIT")
    return _judge(route, rows, counters, examples, relative, absolute)


def _judge(
    route: str,
    rows: list[tuple[str, str, list[str]]],
    counters: dict[str, int],
    examples: dict[tuple[str, str], list[Example]],
    relative: float,
    absolute: float,
) -> Report:
    pairs: dict[tuple[str, str], int] = {}  # (endpoint, kind) → pairs
    differences: dict[tuple[str, str, str], int] = {}  # (endpoint, kind, field) → pairs
    route_noise: dict[str, int] = {}  # field → noise pairs over the route
    for endpoint, kind, fields in rows:
        pairs[endpoint, kind] = pairs.get((endpoint, kind), 0) + 1
        for name in fields:
            differences[endpoint, kind, name] = differences.get((endpoint, kind, name), 0) + 1
            if kind == NOISE:
                route_noise[name] = route_noise.get(name, 0) + 1
    noise_total = sum(n for (_, kind), n in pairs.items() if kind == NOISE)
    real: dict[str, set[str]] = {}  # endpoint → fields judged real
    endpoints: list[EndpointReport] = []
    for endpoint in sorted({e for e, _ in pairs}):
        compared = pairs.get((endpoint, SHADOW), 0)
        noise_pairs = pairs.get((endpoint, NOISE), 0)
        found = sorted({f for e, k, f in differences if e == endpoint})
        reports: list[FieldReport] = []
        for name in found:
            if noise_pairs >= MIN_NOISE:
                noise_diffs, noise_n = differences.get((endpoint, NOISE, name), 0), noise_pairs
            else:
                noise_diffs, noise_n = route_noise.get(name, 0), noise_total
            raw = differences.get((endpoint, SHADOW, name), 0)
            rates = Rates(raw, compared, noise_diffs, noise_n)
            verdict = is_real(rates, relative, absolute)
            if verdict:
                real.setdefault(endpoint, set()).add(name)
            reports.append(FieldReport(name, rates, verdict, examples.get((endpoint, name), [])))
        reports.sort(key=lambda r: (not r.real, -r.rates.rate, r.field))
        differing = sum(
            1
            for e, kind, fields in rows
            if e == endpoint and kind == SHADOW and real.get(endpoint, set()) & set(fields)
        )
        endpoints.append(EndpointReport(endpoint, compared, differing, noise_pairs, reports))
    compared = sum(e.compared for e in endpoints)
    differing = sum(e.differing for e in endpoints)
    matched = sum(1 for _, kind, fields in rows if kind == SHADOW and not fields)
    summary = ShadowSummary(
        compared=compared,
        differing=differing,
        difference_rate=differing / compared if compared else 0.0,
        dropped=sum(v for k, v in counters.items() if k.startswith("dropped:")),
        errors=sum(v for k, v in counters.items() if k.startswith("error:")),
    )
    endpoints.sort(key=lambda e: (-e.differing, e.endpoint))
    noisy = sum(1 for _, kind, fields in rows if kind == NOISE and fields)
    return Report(
        route, summary, matched, counters, endpoints, relative, absolute, noise_total, noisy
    )


def route_report(table: RoutingTable, route: str, store_path: str | Path | None = None) -> Report:
    """``route``'s report judged with its own ``shadow.thresholds`` — what `strangler
    shadow report`, the dashboard and the rollout's shadow gate all read. The store is the
    route's (``store_file``) unless ``store_path`` names another; a route whose shadow
    block is gone is judged with the default thresholds."""
    rules = table.route(route).shadow or Shadow(backend="")
    return report(
        store_path or store_file(table, route),
        route,
        relative=rules.relative,
        absolute=rules.absolute,
    )


def summary(
    store_path: str | Path, route: str, *, relative: float = RELATIVE, absolute: float = ABSOLUTE
) -> ShadowSummary:
    """The route's shadow figures for a rollout's gate: pairs compared, pairs with a real
    difference (noise removed), their rate, copies dropped and failed. Nothing stored
    (or no file) reads as zero everywhere: a gate must also require a minimum sample."""
    return report(store_path, route, relative=relative, absolute=absolute).summary


__all__ = [
    "Comparison", "EndpointReport", "Example", "FieldReport", "NotAStore", "Report",
    "ShadowSummary",
    "Writer", "clear", "connect", "report", "route_report", "store_file", "summary",
]  # fmt: skip
