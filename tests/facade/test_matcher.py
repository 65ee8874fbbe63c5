"""ALB listener-rule semantics of the matcher, table-driven (and the same as `explain`)."""

from __future__ import annotations

import random

import pytest

from facade.proxy.normalize import BadPath, normalize_path
from facade.routing.loader import parse_table
from facade.routing.matcher import Matcher

TABLE = """
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:1"}
  orders: {kind: ecs, url: "http://127.0.0.1:2"}
  catalog: {kind: ecs, url: "http://127.0.0.1:3"}
  beta: {kind: ecs, url: "http://127.0.0.1:4"}
routes:
  - name: beta-testers
    match: {paths: ["/api/*"], headers: {X-Beta: ["yes", "on*"]}}
    targets: beta
  - name: orders-write
    match: {paths: ["/api/orders", "/api/orders/*"], methods: [POST, PUT]}
    targets: {orders: 100}
  - name: orders-read
    match: {paths: ["/api/orders/*"]}
    targets: {orders: 50, monolith: 50}
  - name: catalog
    match: {paths: ["/api/catalog/*"]}
    targets: catalog
  - name: invoice
    match: {paths: ["/invoices/??/*.pdf"]}
    targets: catalog
  - name: exact
    match: {paths: ["/Exact"]}
    targets: orders
default: monolith
"""

MATCHER = Matcher(parse_table(TABLE))

CASES = [
    # method, path, headers, expected route — why
    ("GET", "/api/orders/12", {}, "orders-read"),  # * after a slash
    ("GET", "/api/orders", {}, "default"),  # /api/orders/* needs the slash
    ("POST", "/api/orders", {}, "orders-write"),  # exact pattern, method
    ("PUT", "/api/orders/7/pay", {}, "orders-write"),  # * spans slashes
    ("DELETE", "/api/orders/7", {}, "orders-read"),  # method not in the write rule
    ("post", "/api/orders", {}, "default"),  # methods are case-sensitive
    ("GET", "/api/catalog/", {}, "catalog"),  # * matches the empty string
    ("GET", "/api/catalog", {}, "default"),  # ... but the slash is literal
    ("GET", "/API/catalog/x", {}, "default"),  # paths are case-sensitive
    ("GET", "/api/Catalog/x", {}, "default"),
    ("GET", "/invoices/ab/2024/x.pdf", {}, "invoice"),  # ? is exactly one character
    ("GET", "/invoices/a/2024/x.pdf", {}, "default"),
    ("GET", "/invoices/abc/x.pdf", {}, "default"),
    ("GET", "/invoices/ab/x.pdfs", {}, "default"),  # patterns are anchored at the end
    ("GET", "/Exact", {}, "exact"),
    ("GET", "/Exact/", {}, "default"),  # trailing slash matters
    ("GET", "/exact", {}, "default"),
    ("GET", "/api/orders/1", {"x-beta": ["yes"]}, "beta-testers"),  # priority: first wins
    ("GET", "/api/orders/1", {"x-beta": ["YES"]}, "beta-testers"),  # values case-insensitive
    ("GET", "/api/orders/1", {"x-beta": ["onwards"]}, "beta-testers"),  # value wildcards
    ("GET", "/api/orders/1", {"x-beta": ["no", "on"]}, "beta-testers"),  # any of the values
    ("GET", "/api/orders/1", {"x-beta": ["no"]}, "orders-read"),
    ("GET", "/shop/", {"x-beta": ["yes"]}, "default"),  # header alone is not enough
]


@pytest.mark.parametrize(("method", "path", "headers", "expected"), CASES)
def test_rule_semantics(
    method: str, path: str, headers: dict[str, list[str]], expected: str
) -> None:
    assert MATCHER.match(method, path, headers).name == expected
    assert MATCHER.explain(method, path, headers).route.name == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/api/orders/1", "orders-read"),
        ("/api/%6Frders/1", "orders-read"),  # encoded unreserved characters are decoded
        ("/api//orders/1", "orders-read"),  # empty segments collapse
        ("/api/catalog/../orders/1", "orders-read"),  # dot segments resolve first
        ("/api/./orders/1", "orders-read"),
        ("/api/orders/a%20b", "orders-read"),  # other escapes stay escaped
    ],
)
def test_paths_are_normalised_before_matching(raw: str, expected: str) -> None:
    assert MATCHER.match("GET", normalize_path(raw), {}).name == expected


@pytest.mark.parametrize(
    "raw",
    ["/api/orders%2F1", "/api/%2e%2e/admin", "/api/..%2Fx", "/a\\b", "/..", "/a/../../b", "/x%zz"],
)
def test_paths_that_hide_a_separator_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        normalize_path(raw)


def test_normalisation_keeps_the_path_the_backend_will_see() -> None:
    assert normalize_path("/a/b/../c/./d/") == "/a/c/d/"
    assert normalize_path("/a/b/..") == "/a/"
    assert normalize_path("/a%7eb%41") == "/a~bA"
    assert normalize_path("/a%2a") == "/a%2A"


def test_explain_names_the_failed_condition_of_each_earlier_route() -> None:
    explanation = MATCHER.explain("GET", "/api/orders/1", {"x-beta": ["no"]})
    assert explanation.route.name == "orders-read"
    reasons = {r.route: r.reason for r in explanation.rejected}
    assert reasons == {
        "beta-testers": "header x-beta: 'no' matches none of yes, on*",
        "orders-write": "method GET is not one of POST, PUT",
    }
    as_dict = explanation.as_dict()
    assert as_dict["targets"] == [
        {"backend": "orders", "percent": 50.0},
        {"backend": "monolith", "percent": 50.0},
    ]


def test_first_match_is_found_past_rules_that_fail_on_method_or_header() -> None:
    """The one-regex fast path must agree with plain rule-by-rule evaluation."""
    for method in ("GET", "POST", "PUT", "DELETE"):
        for path in ("/api/orders", "/api/orders/1", "/api/catalog/1", "/x", "/Exact"):
            for headers in ({}, {"x-beta": ["on"]}):
                assert (
                    MATCHER.match(method, path, headers).name
                    == MATCHER.explain(method, path, headers).route.name
                )


SEGMENTS = ("a", "b", "ab", "x1", "")


def _random_pattern(rng: random.Random) -> str:
    parts = [rng.choice(SEGMENTS) for _ in range(rng.randint(1, 3))]
    pattern = "/" + "/".join(parts)
    roll = rng.random()
    if roll < 0.3:
        return pattern + "/*"
    if roll < 0.45:
        return pattern + "*"
    if roll < 0.55:
        return pattern[:-1] + "?" if len(pattern) > 1 else "/?"
    if roll < 0.65:
        return "*" + pattern[1:]
    if roll < 0.75:
        cut = rng.randrange(1, len(pattern) + 1)
        return pattern[:cut] + "*" + pattern[cut:]
    return pattern


@pytest.mark.parametrize("seed", range(60))
def test_the_prefix_index_finds_the_same_route_as_trying_every_rule_in_order(seed: int) -> None:
    rng = random.Random(seed)
    routes = []
    for i in range(rng.randint(1, 25)):
        paths = sorted({_random_pattern(rng) for _ in range(rng.randint(1, 3))})
        methods = ", methods: [POST]" if rng.random() < 0.2 else ""
        quoted = ", ".join(f"'{p}'" for p in paths)
        routes.append(f"  - {{name: r{i}, match: {{paths: [{quoted}]{methods}}}, targets: m}}")
    table = parse_table(
        "version: 1\nbackends:\n  m: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
        "routes:\n" + "\n".join(routes) + "\ndefault: m\n"
    )
    matcher = Matcher(table)
    for _ in range(200):
        path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 4)))
        method = rng.choice(("GET", "POST"))
        # explain() tries every rule's own patterns in priority order: the reference
        expected = matcher.explain(method, path, {}).route.name
        assert matcher.match(method, path, {}).name == expected, (path, method)
