"""Which route a request takes: ALB listener-rule semantics, in one place.

Rules are evaluated in priority order and the first whose every condition holds wins;
the default route takes what none matched. Within a rule: any of its path patterns
(case-sensitive, ``*`` and ``?``, path only — the query string never takes part), any
of its methods, and for each header condition any request value of that header (name
case-insensitive) matching any of its values (case-insensitive, wildcards).

The local proxy, ``strangler explain`` and the ALB generator all use this module, so
the local decision and the AWS decision for a request cannot differ.

Speed: rules are indexed by the literal path prefix of their patterns, cut back to
whole segments (``/api/orders/*`` → ``/api/orders``, ``/api/ord*`` → ``/api``, an exact
path → itself, a leading wildcard → the root). A request looks up only the prefixes of
its own path (one dict lookup per ``/``), and the rules found there — in priority order —
are compiled into one alternation, cached per set of prefixes, so a single regex match
finds the first rule whose path matches. Only when that rule's method or header
conditions fail does the search continue past it. The cost grows with the rules that
share a request's prefixes, not with the table (``loadtests/bench_routing.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from facade.routing.model import Route, RoutingTable
from facade.routing.patterns import compile_wildcard

Headers = Mapping[str, Sequence[str]]  # lower-case name → values in arrival order


@dataclass(frozen=True)
class _Rule:
    route: Route
    methods: frozenset[str] | None
    headers: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]


def _bucket(pattern: str) -> str:
    """Where a pattern is indexed: its literal prefix cut back to whole segments."""
    if "*" not in pattern and "?" not in pattern:
        return pattern  # an exact path: only that path
    literal = pattern[: min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)]
    return literal[: max(literal.rfind("/"), 0)]


def _path_regex(route: Route) -> str:
    if not route.match.paths:
        return ".*"
    return "|".join(compile_wildcard(p).pattern for p in route.match.paths)


@dataclass(frozen=True)
class Rejection:
    route: str
    reason: str


@dataclass(frozen=True)
class Explanation:
    route: Route
    rejected: tuple[Rejection, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "route": self.route.name,
            "priority": None if self.route.name == "default" else self.route.priority,
            "targets": [{"backend": t.backend, "percent": t.percent} for t in self.route.targets],
            "stickiness": (
                {"duration": self.route.stickiness.duration} if self.route.stickiness else None
            ),
            "stable_key": (
                {"header": self.route.stable_key.header, "cookie": self.route.stable_key.cookie}
                if self.route.stable_key
                else None
            ),
            "rejected": [{"route": r.route, "reason": r.reason} for r in self.rejected],
        }


class Matcher:
    """A compiled route table: ``match(method, path, headers)`` → the route."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self._rules = tuple(
            _Rule(
                route=route,
                methods=frozenset(route.match.methods) or None,
                headers=tuple(
                    (h.name, tuple(compile_wildcard(v, ignore_case=True) for v in h.values))
                    for h in route.match.headers
                ),
            )
            for route in table.routes
        )
        self._paths = [re.compile(f"(?:{_path_regex(r.route)})", re.DOTALL) for r in self._rules]
        self._buckets: dict[str, list[int]] = {}
        for index, rule in enumerate(self._rules):
            for key in {_bucket(p) for p in rule.route.match.paths} or {""}:
                self._buckets.setdefault(key, []).append(index)
        self._root = tuple(self._buckets.get("", ()))
        # prefixes deeper than the deepest indexed one can be in no bucket: stop there
        self._depth = max((k.count("/") for k in self._buckets), default=0)
        self._combined: dict[tuple[tuple[str, ...], int], tuple[re.Pattern[str], int]] = {}

    def _prefixes(self, path: str) -> tuple[str, ...]:
        """The bucket keys this path can match: the path's prefixes up to each '/', and
        the whole path (exact patterns), that the table has rules for."""
        buckets = self._buckets
        found = []
        j, depth = path.find("/", 1), self._depth
        while j > 0 and depth:
            prefix = path[:j]
            if prefix in buckets:
                found.append(prefix)
            j, depth = path.find("/", j + 1), depth - 1
        if path in buckets:
            found.append(path)
        return tuple(found)

    def _first_path_match(self, path: str, start: int, keys: tuple[str, ...]) -> int:
        """Index of the first rule at or after ``start`` whose path patterns match."""
        cached = self._combined.get((keys, start))
        if cached is None:
            candidates = sorted({i for key in keys for i in self._buckets[key]}.union(self._root))
            alternatives = "|".join(
                f"(?P<r{i}>{_path_regex(self._rules[i].route)})" for i in candidates if i >= start
            )
            cached = (re.compile(alternatives or "(?!)", re.DOTALL), len(self._rules))
            self._combined[keys, start] = cached
        combined, none = cached
        found = combined.fullmatch(path)
        if found is None or found.lastgroup is None:
            return none
        return int(found.lastgroup[1:])

    def match(self, method: str, path: str, headers: Headers) -> Route:
        keys = self._prefixes(path)
        index = self._first_path_match(path, 0, keys)
        rules = self._rules
        while index < len(rules):
            rule = rules[index]
            if (rule.methods is None or method in rule.methods) and (
                not rule.headers or _headers_hold(rule.headers, headers)
            ):
                return rule.route
            index = self._first_path_match(path, index + 1, keys)
        return self.table.default

    def explain(self, method: str, path: str, headers: Headers) -> Explanation:
        """The route taken, and for every earlier route the condition that failed."""
        rejected: list[Rejection] = []
        for rule, path_re in zip(self._rules, self._paths, strict=True):
            reason = self._why_not(rule, path_re, method, path, headers)
            if reason is None:
                return Explanation(rule.route, tuple(rejected))
            rejected.append(Rejection(rule.route.name, reason))
        return Explanation(self.table.default, tuple(rejected))

    @staticmethod
    def _why_not(
        rule: _Rule, path_re: re.Pattern[str], method: str, path: str, headers: Headers
    ) -> str | None:
        match = rule.route.match
        if match.paths and not path_re.fullmatch(path):
            return f"path {path} matches none of {', '.join(match.paths)}"
        if rule.methods is not None and method not in rule.methods:
            return f"method {method} is not one of {', '.join(match.methods)}"
        for condition, (name, values) in zip(match.headers, rule.headers, strict=True):
            present = headers.get(name, ())
            if not present:
                return f"header {name} is missing (wanted {' or '.join(condition.values)})"
            if not any(v.fullmatch(p) for v in values for p in present):
                shown = ", ".join(repr(p) for p in present)
                return f"header {name}: {shown} matches none of {', '.join(condition.values)}"
        return None


def _headers_hold(
    conditions: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...], headers: Headers
) -> bool:
    for name, values in conditions:
        present = headers.get(name)
        if not present or not any(v.fullmatch(p) for v in values for p in present):
            return False
    return True


__all__ = ["Explanation", "Headers", "Matcher", "Rejection"]
